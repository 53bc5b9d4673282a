#!/usr/bin/env bash
# Installs invdesign with other versions of its dependencies than requirements.txt's newest ones, each set in a
# fresh virtual environment, and runs the test suite (pytest -m "not slow") against it:
#   conda   the versions envs/chem.yaml and envs/train.yaml pin (what `snakemake --sdm conda` users get),
#           translated to PyPI names by bench/env_pins.py (conda-forge is unreachable here, so no conda solver
#           runs: this checks that the pinned versions resolve together and pass the tests);
#   lowest  the lowest versions pyproject.toml allows for every direct dependency (uv --resolution lowest-direct),
#           i.e. the oldest stack a user's `pip install invdesign` may meet, e.g. an older torch on a GPU node.
#
#   bash bench/env_versions.sh [conda|lowest|all] [WORK_DIR]   (default: all, /tmp/invdesign_env_versions)
#
# Needs Python 3.11+ (as the env files), PyPI and ../shared/data beside the repository (as the tests).
# uv resolves the sets (pip's resolver gave up on the conda set with resolution-too-deep after 6 min);
# it is installed (with pyyaml, for bench/env_pins.py) into a throwaway venv in WORK_DIR, not into the project.
# torch comes from PyPI, i.e. a CUDA build (about 7.5 GB per venv; it runs on the CPU). Record: docs/benchmarks.md
# ("Dependency versions").
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH=${1:-all}
WORK=${2:-/tmp/invdesign_env_versions}
case $WHICH in conda|lowest|all) ;; *) echo "env_versions.sh: the set is conda, lowest or all, not $WHICH" >&2; exit 2;; esac
mkdir -p "$WORK"
REPO=$(pwd)
PY=${PYTHON:-python3}
[ -x "$WORK/tools/bin/uv" ] || { "$PY" -m venv "$WORK/tools" && "$WORK/tools/bin/pip" install -q uv pyyaml; }
UV="$WORK/tools/bin/uv"
DIRECT="torch|torch-geometric|numpy|scipy|pandas|pyarrow|pyyaml|jsonschema|matplotlib|rdkit|selfies|pymatgen|\
pymatgen-core|ase|smact|pooch|tblite|monty|setuptools|qm9pack|chgnet|matcalc|snakemake|snakemake-executor-plugin-slurm|\
snakemake-executor-plugin-kubernetes|pytest"

check() {  # check NAME REQUIREMENTS_IN [uv pip compile options...]
  local name=$1 req_in=$2; shift 2
  local venv="$WORK/$name" t0
  rm -rf "$venv" "$WORK/$name.lock.txt" "$WORK/$name.pytest.log"
  # (set -e does not act inside a function called from `||`: every step checks its own status)
  "$UV" pip compile -q --python-version "$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    "$@" "$req_in" -o "$WORK/$name.lock.txt" || { echo "== $name: the versions do not resolve together"; return 1; }
  "$PY" -m venv "$venv" || return 1
  "$UV" pip install -q --python "$venv/bin/python" -r "$WORK/$name.lock.txt" || return 1
  "$UV" pip install -q --python "$venv/bin/python" --no-deps -e "$REPO" || return 1
  # what was installed is the lock: its lines for the packages the project names
  echo "== $name: $(grep -cE '^[A-Za-z0-9]' "$WORK/$name.lock.txt") packages; the project's direct dependencies:"
  echo "   $(grep -E "^($DIRECT)==" "$WORK/$name.lock.txt" | sed 's/==/ /' | paste -sd, | sed 's/,/, /g')"
  t0=$(date +%s)
  set +e
  (cd "$REPO" && "$venv/bin/python" -m pytest -m "not slow" -q -p no:cacheprovider) > "$WORK/$name.pytest.log" 2>&1
  local rc=$?
  set -e
  echo "== $name: pytest rc=$rc in $(( $(date +%s) - t0 )) s: $(grep -E '(passed|failed)' "$WORK/$name.pytest.log" | tail -1)"
  grep -E "^(FAILED|ERROR|SKIPPED)|^Fatal Python error" "$WORK/$name.pytest.log" || true
  return $rc
}

rc=0
if [ "$WHICH" != lowest ]; then
  "$WORK/tools/bin/python" -m bench.env_pins envs/chem.yaml envs/train.yaml > "$WORK/conda.in"
  check conda "$WORK/conda.in" || rc=1
fi
if [ "$WHICH" != conda ]; then
  # pyproject.toml as the input: its dependencies are the direct ones that lowest-direct takes at their lowest
  check lowest pyproject.toml --resolution lowest-direct --extra chem --extra workflow --extra cluster \
    --extra test || rc=1
fi
exit $rc
