#!/usr/bin/env bash
# Full-size training numbers for docs/benchmarks.md (issue #6): every model of config/molecules_gap.yaml
# (all of QM9) and config/materials_bulk_modulus.yaml (all MP elasticity binaries <= 20 sites), timed for a
# few epochs on one GPU by bench/gpu_train.py, which extrapolates to the configured epochs.
#
# The GPU node needs only torch + torch-geometric: the graphs are featurized here and travel gzipped.
#   here:  bash bench/gpu_full_size.sh prepare      # -> .gpu/{qm9,mp}_graphs.pt.gz (~13 MB) and .whl/
#   there: bash bench/gpu_full_size.sh run OUTDIR   # OUTDIR gets the JSON reports, logs and nvidia-smi
# Epochs per model: QM9_EPOCHS (default 2) and MP_EPOCHS (default 10); loader workers: WORKERS (default 6,
# as in the full-size configs); CAMPAIGNS (default "mp qm9"; "" for none), DEVICE (default cuda), SAMPLES
# (default 1000).
# On a node with several GPUs it then times QM9 data-parallel on all of them (PROCS overrides the count).
# Wall time on one H100/H200: about 5-7 minutes (an estimate from the 2026-11-23 H100 per-epoch times).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: bash bench/gpu_full_size.sh prepare | run OUTDIR}

if [[ $mode == prepare ]]; then
    results=${RESULTS:-results}
    python -m snakemake --cores "${CORES:-2}" --configfile config/molecules_gap.yaml --config "results=$results" \
        -- "$results/qm9_gap_full/data/graphs.pt"
    python -m snakemake --cores "${CORES:-2}" --configfile config/materials_bulk_modulus.yaml \
        --config "results=$results" -- "$results/mp_bulk_full/data/graphs.pt"
    mkdir -p .gpu
    gzip -c "$results/qm9_gap_full/data/graphs.pt" > .gpu/qm9_graphs.pt.gz
    gzip -c "$results/mp_bulk_full/data/graphs.pt" > .gpu/mp_graphs.pt.gz
    # config validation needs jsonschema, which the GPU image lacks: carry it (and its needs) as wheels
    python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
        jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1
    ls -la .gpu .whl
    echo "carry .gpu and .whl to the GPU node"
    exit 0
fi

[[ $mode == run ]] || { echo "unknown mode $mode: use prepare or run" >&2; exit 2; }
out=${2:?give the folder for the reports}
mkdir -p "$out"
if ! python3 -c "import jsonschema" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
python3 -c "import torch, torch_geometric; print('torch', torch.__version__, 'pyg', torch_geometric.__version__)" \
    | tee -a "$out/nvidia-smi.txt"
work=$(mktemp -d)
status=0
declare -A config=([mp]=config/materials_bulk_modulus.yaml [qm9]=config/molecules_gap.yaml)
declare -A campaign=([mp]=mp_bulk_full [qm9]=qm9_gap_full)
declare -A epochs=([mp]=${MP_EPOCHS:-10} [qm9]=${QM9_EPOCHS:-2})
bench() {  # bench NAME CAMPAIGN [more bench/gpu_train.py options]: $out/NAME.log and the JSON report
    local name=$1 c=$2
    shift 2
    python3 -m bench.gpu_train ".gpu/${c}_graphs.pt.gz" --config "${config[$c]}" --campaign "${campaign[$c]}" \
        --device "${DEVICE:-cuda}" --epochs "${epochs[$c]}" --workers "${WORKERS:-6}" "$@" --out "$work/$name" \
        > "$out/$name.log" 2>&1 || status=$?
    cp "$work/$name"/bench_*.json "$out/" 2>/dev/null || true
}
for c in ${CAMPAIGNS-mp qm9}; do
    bench "$c" "$c" --samples "${SAMPLES:-1000}"
done
# several GPUs (or PROCS set): QM9 again, data-parallel through the training rules' torchrun launch
procs=${PROCS:-$(nvidia-smi -L 2>/dev/null | grep -c "^GPU" || true)}
if (( ${procs:-0} > 1 )); then
    bench qm9_ddp qm9 --samples 0 --processes "$procs"
fi
exit $status
