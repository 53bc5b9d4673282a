"""Bad input and faults, second round (issue #37): each class gets a one-line error that names the key, file, row
or path and the fix, before any job where it can be known then; docs/reliability.md lists them."""

import copy
import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from invdesign.config import load_config, validate_config
from invdesign.errors import InvdesignError
from tests.test_fuzz import config_error


@pytest.fixture()
def base(repo):
    return yaml.safe_load((repo / "config" / "config.yaml").read_text())


def run(repo, module, *args, env=None):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=repo, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def error_lines(res) -> list[str]:
    return [ln for ln in res.stderr.splitlines() if ln.startswith("invdesign error")]


# ---------------------------------------------------------------------------------------------- duplicate keys

TINY_TEXT = "config/tests/tiny.yaml"


def with_twice(repo, tmp_path, suffix=".yaml"):
    """The tiny config with `target:` of its first campaign given twice (YAML or JSON)."""
    text = (repo / TINY_TEXT).read_text()
    if suffix == ".json":
        data = yaml.safe_load(text)
        first = next(iter(data["campaigns"]))
        body = json.dumps(data)
        # the first campaign's target again, right after its own: JSON keeps the last one
        key = '"target": ' + json.dumps(data["campaigns"][first]["target"])
        text = body.replace(key, key + ', "target": {"min": 0.0}', 1)
        assert text != body
    else:
        lines = text.splitlines()
        i = next(n for n, ln in enumerate(lines) if ln.strip().startswith("target:"))
        indent = lines[i][:len(lines[i]) - len(lines[i].lstrip())]
        lines.insert(i, f"{indent}target: {{min: 0.0}}")
        text = "\n".join(lines) + "\n"
    path = tmp_path / f"twice{suffix}"
    path.write_text(text)
    return path


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_key_given_twice_in_a_config_file_is_one_line_with_the_key(repo, tmp_path, suffix):
    path = with_twice(repo, tmp_path, suffix)
    with pytest.raises(InvdesignError) as err:
        load_config(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: key 'target' is given twice") and "\n" not in msg, msg
    if suffix == ".yaml":
        assert "lines " in msg, msg  # the line of each
    res = run(repo, "invdesign.config", str(path))  # the check of a config file in docs/guide.md
    assert res.returncode == 1 and len(error_lines(res)) == 1 and "'target' is given twice" in res.stderr


def test_snakemake_reads_the_config_again_and_refuses_a_key_given_twice(repo, tmp_path):
    path = with_twice(repo, tmp_path)
    res = run(repo, "snakemake", "-n", "--cores", "1", "--configfile", str(path), "--config", f"results={tmp_path}/r")
    lines = error_lines(res)
    assert res.returncode == 1 and len(lines) == 1 and "'target' is given twice" in lines[0], res.stderr[-2000:]


def test_a_column_given_twice_in_a_csv_is_one_line_naming_it(tmp_path):
    from invdesign.pipeline.data import prepare_dataset

    csv = tmp_path / "mine.csv"
    csv.write_text("smiles,y,y\n" + "".join(f"{'C' * n}O,{n},{-n}\n" for n in range(1, 12)))
    with pytest.raises(InvdesignError) as err:
        prepare_dataset(campaign="t", domain="molecules", split={}, data={}, out=str(tmp_path / "d.parquet"),
                        dataset={"source": "csv", "path": str(csv), "property_column": "y"})
    assert str(err.value) == (f"{csv}: column 'y' is given twice in the header (columns 2 and 3); rename or "
                              "remove one")


def test_a_smiles_column_given_twice_in_a_known_library_is_one_line(tmp_path):
    from invdesign.data.known import read_smiles_library

    lib = tmp_path / "lib.csv"
    lib.write_text("smiles,smiles\nCCO,CCC\n")
    with pytest.raises(InvdesignError, match="column 'smiles' is given twice"):
        read_smiles_library(str(lib))


# ---------------------------------------------------------------------------------------------- code in a config


def yte_config(repo, tmp_path):
    marker = tmp_path / "ran"
    text = ('__use_yte__: true\n'
            f'written: ?__import__("pathlib").Path("{marker}").write_text("ran")\n'
            + (repo / TINY_TEXT).read_text())
    path = tmp_path / "yte.yaml"
    path.write_text(text)
    return path, marker


def test_invdesign_run_refuses_a_yte_config_before_snakemake_reads_it(repo, tmp_path):
    path, marker = yte_config(repo, tmp_path)
    res = run(repo, "invdesign", "run", str(path), "-n", "--cores", "1")
    lines = error_lines(res)
    assert res.returncode == 1 and len(lines) == 1 and "__use_yte__" in lines[0] and str(path) in lines[0], res.stderr
    assert not marker.exists()  # the code in the file never ran
    with pytest.raises(InvdesignError, match="__use_yte__"):
        load_config(path)


def test_snakemake_itself_stops_on_a_yte_config_with_one_line(repo, tmp_path):
    path, _ = yte_config(repo, tmp_path)
    res = run(repo, "snakemake", "-n", "--cores", "1", "--configfile", str(path))
    lines = error_lines(res)
    assert res.returncode == 1 and len(lines) == 1 and "__use_yte__" in lines[0], res.stderr[-2000:]


def test_invdesign_run_execs_snakemake_with_the_validated_config(repo, tmp_path, monkeypatch):
    import invdesign.__main__ as entry

    seen = []
    monkeypatch.setattr(entry.os, "execv", lambda exe, argv: seen.append(argv))
    cfg = repo / TINY_TEXT
    assert entry.main(["run", str(cfg), "--cores", "2", "results/x"]) == 0
    assert seen == [[sys.executable, "-m", "snakemake", f"--configfile={cfg}", "--cores", "2", "results/x"]]
    assert entry.main(["run", str(cfg), "--configfile", "other.yaml"]) == 1  # a second config is not validated
    assert entry.main(["run"]) == 2 and len(seen) == 1


# ---------------------------------------------------------------------------- unbounded sizes and late checks


def mol(c):
    return c["campaigns"]["qm9_gap"]


CONFIG_CASES = {  # class: (mutation, what the error names)
    "10**30 samples": (lambda c: mol(c)["generators"][1].update(n_samples=10**30),
                       "generators.1.n_samples: 1000000000000000000000000000000 is greater than the maximum of"),
    "10**30 samples as --config text": (lambda c: mol(c)["generators"][1].update(n_samples="1" + "0" * 30),
                                        "n_samples: 1000000000000000000000000000000 is greater than the maximum"),
    "10**30 latent starts": (lambda c: mol(c)["search"].update(n_starts=10**30), "search.n_starts"),
    "10**30 epochs": (lambda c: mol(c)["predictor"].update(epochs=10**30), "predictor.epochs"),
    "/dev/zero as a known library": (lambda c: mol(c).update(filters={"known_library": ["/dev/zero"]}),
                                     "known_library.0: /dev/zero is not a regular file"),
    "a 300-character campaign name": (lambda c: c["campaigns"].update({"a" * 300: mol(c)}),
                                      "has 300 characters; use at most 100"),
    "a campaign name Snakemake takes for a recursion": (lambda c: c["campaigns"].update({"x" + "ab" * 20: mol(c)}),
                                                        "'ab' repeated 20 times"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_a_count_name_or_library_out_of_bounds_gets_one_line(base, case):
    mutate, names = CONFIG_CASES[case]
    assert names in config_error(base, mutate)


def test_a_fifo_or_an_oversized_file_as_a_known_library_is_refused_before_reading(base, tmp_path, monkeypatch):
    from invdesign.config import filters
    from invdesign.data.known import read_smiles_library

    fifo = tmp_path / "lib.smi"
    os.mkfifo(fifo)  # reading it would wait for a writer for good
    bad = copy.deepcopy(base)
    mol(bad).update(filters={"known_library": [str(fifo)]})
    with pytest.raises(InvdesignError, match="lib.smi is not a regular file"):
        validate_config(bad)
    with pytest.raises(InvdesignError, match="is not a regular file"):
        read_smiles_library(str(fifo))
    big = tmp_path / "big.smi"
    big.write_text("CCO\n" * 100)
    monkeypatch.setattr(filters, "MAX_LIBRARY_BYTES", 256)
    with pytest.raises(InvdesignError, match="big.smi holds .* GiB, more than"):
        read_smiles_library(str(big))


def test_a_dangling_results_link_is_one_line_while_validating(base, tmp_path):
    link = tmp_path / "results"
    link.symlink_to(tmp_path / "gone" / "results")
    msg = config_error(base, lambda c: c.update(results=str(link)))
    assert f"{link} is a link to {tmp_path}/gone/results, which does not exist" in msg


@pytest.mark.parametrize("value, names", [("garbage", "unknown device 'garbage' in the environment variable"),
                                          ("CUDA", "(torch spells it 'cuda')")])
def test_a_bad_invdesign_device_stops_the_plan_with_one_line(repo, tmp_path, value, names):
    res = run(repo, "snakemake", "-n", "--cores", "1", "--configfile", TINY_TEXT, "--config", f"results={tmp_path}",
              env={"INVDESIGN_DEVICE": value})
    lines = error_lines(res)
    assert res.returncode == 1 and len(lines) == 1 and names in lines[0], res.stderr[-2000:]
    assert "use auto, cpu, cuda or cuda:N" in lines[0]


# ---------------------------------------------------------------------------------------------- CIF folders

CIFS = __import__("pathlib").Path(__file__).parent / "data" / "crystals_cifs"


def big_cif(n: int) -> str:
    head = CIFS.joinpath("mgo.cif").read_text().split("loop_\n _atom_site_type_symbol")[0]
    rows = "".join(f"  Mg  Mg{i}  1  {i / n:.8f}  0.0  0.0  1\n" for i in range(n))
    return (head + "loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_symmetry_multiplicity\n"
            " _atom_site_fract_x\n _atom_site_fract_y\n _atom_site_fract_z\n _atom_site_occupancy\n" + rows)


@pytest.fixture()
def cif_folder(tmp_path):
    """mgo (good), a 20,000-atom cell, an id that climbs out of the folder, an absolute id, and a CIF without a
    table row; outside.cif lies beside the folder."""
    folder = tmp_path / "cifs"
    folder.mkdir()
    for name in ("mgo", "orphan"):
        (folder / f"{name}.cif").write_text(CIFS.joinpath("mgo.cif").read_text())
    (folder / "big.cif").write_text(big_cif(20_000))
    (tmp_path / "outside.cif").write_text(CIFS.joinpath("mgo.cif").read_text())
    table = tmp_path / "props.csv"
    pd.DataFrame({"id": ["mgo", "big", "../outside", str(tmp_path / "outside")],
                  "k": [160.0, 1.0, 2.0, 3.0]}).to_csv(table, index=False)
    return {"source": "cif_folder", "path": str(folder), "table": str(table), "property_column": "k",
            "max_atoms": 20}


def test_cifs_outside_the_folder_too_large_or_without_a_row(cif_folder, monkeypatch, caplog):
    import logging

    from pymatgen.core import Structure

    from invdesign.domains import crystals as dom

    parse = Structure.from_file

    def only_small(path, *a, **k):  # the 20,000-atom cell is refused before pymatgen parses it (211 s)
        assert "big" not in str(path), "pymatgen parsed the oversized CIF"
        return parse(path, *a, **k)

    monkeypatch.setattr(Structure, "from_file", only_small)
    with caplog.at_level(logging.WARNING):
        df = dom.load_source(cif_folder, mirror=None, cache_dir="unused")
    assert df["id"].tolist() == ["mgo"]  # neither outside.cif was read
    assert "skipped 3 unusable CIFs of 4 table rows" in caplog.text
    assert "1 CIF files have no row in" in caplog.text and "orphan.cif" in caplog.text
    with pytest.raises(InvdesignError) as err:
        dom.load_source(cif_folder | {"on_bad_rows": "error"}, mirror=None, cache_dir="unused")
    assert "big.cif: cannot use this CIF (20000 atom sites listed > dataset.max_atoms = 20" in str(err.value)
    table = pd.read_csv(cif_folder["table"]).iloc[[0, 2]]
    table.to_csv(cif_folder["table"], index=False)
    with pytest.raises(InvdesignError, match=r"id '\.\./outside' is not a file name: it would read a CIF outside"):
        dom.load_source(cif_folder | {"on_bad_rows": "error"}, mirror=None, cache_dir="unused")


# ---------------------------------------------------------------------------------------------- objectives


@pytest.mark.parametrize("objectives, names", [
    ([{"name": "qed", "min": 1.5}], "qed >= 1.5 and <= 1 can never hold"),
    ([{"name": "qed", "min": 0.9}, {"name": "qed", "max": 0.2}], "qed >= 0.9 and <= 0.2 can never hold"),
    ([{"name": "sa_score", "max": 0.5}], "sa_score >= 1 and <= 0.5"),
])
def test_objectives_that_can_never_hold_are_one_line(base, objectives, names):
    msg = config_error(base, lambda c: mol(c).update(filters={"objectives": objectives}))
    assert msg.startswith("c.yaml: campaigns.qm9_gap.filters.objectives: ") and names in msg, msg


def test_objectives_that_can_hold_together_pass(base):
    ok = copy.deepcopy(base)
    mol(ok).update(filters={"objectives": [{"name": "qed", "min": 0.2}, {"name": "qed", "max": 0.9}]})
    c = copy.deepcopy(base)["campaigns"]["mp_bulk"]
    c["filters"] = {"objectives": [{"name": "cost_usd_per_kg", "min": 0, "max": 1e6}]}
    ok["campaigns"]["mp_bulk"] = c
    assert validate_config(ok)["campaigns"]["qm9_gap"]["filters"]["objectives"][1]["max"] == 0.9


# ---------------------------------------------------------------------------------------------- a full disk

FULL = {
    "ENOSPC from a table writer": ("write_table", "pandas.DataFrame.to_parquet",
                                   OSError(28, "No space left on device")),
    "EDQUOT from a JSON write": ("write_json", "pathlib.Path.write_text", OSError(122, "Disk quota exceeded")),
    "torch's zip writer": ("torch_save", "torch.save",
                           RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")),
}


@pytest.mark.parametrize("case", list(FULL))
def test_a_full_disk_is_one_line_naming_the_folder_and_leaves_nothing_behind(tmp_path, monkeypatch, case):
    import importlib
    from pathlib import Path

    from invdesign import io

    writer, target, exc = FULL[case]
    module, _, attr = target.rpartition(".")
    owner = importlib.import_module(module.split(".")[0])
    for part in module.split(".")[1:]:
        owner = getattr(owner, part)

    def full(*args, **kwargs):
        next(a for a in args if isinstance(a, Path)).write_bytes(b"half")  # a half-written temporary file
        raise exc

    out = tmp_path / "out" / {"write_table": "t.parquet", "write_json": "m.json", "torch_save": "g.pt"}[writer]
    out.parent.mkdir()
    out.write_bytes(b"finished")
    monkeypatch.setattr(owner, attr, full)
    with pytest.raises(InvdesignError) as err:
        getattr(io, writer)(pd.DataFrame({"a": [1]}) if writer == "write_table" else {"a": 1}, out)
    assert str(err.value).startswith(f"no space left on {out.parent} ("), str(err.value)
    assert out.read_bytes() == b"finished" and sorted(p.name for p in out.parent.iterdir()) == [out.name]


def test_other_write_errors_are_not_called_a_full_disk(tmp_path, monkeypatch):
    from invdesign.io import atomic_path

    with pytest.raises(PermissionError):
        with atomic_path(tmp_path / "x.json"):
            raise PermissionError(13, "Permission denied")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------- messages that mislead


def test_a_target_just_outside_the_data_reads_as_outside():
    from invdesign.targets import check_target_in_range

    with pytest.raises(InvdesignError) as err:
        check_target_in_range({"min": 13.57}, [1.0, 13.5649], "campaigns.x", "eV")
    assert "target [13.57, inf] eV lies outside the data's range [1, 13.56] eV" in str(err.value), str(err.value)


def test_a_mirror_that_is_a_file_is_called_a_file(base, tmp_path, monkeypatch):
    import pooch

    from invdesign.data.materials import MP_ELASTICITY, fetch

    mirror = tmp_path / "mirror"
    mirror.write_text("not a folder")
    bad = copy.deepcopy(base)
    bad["data"] = {"mirror": str(mirror)}
    with pytest.raises(InvdesignError, match=f"data.mirror = '{mirror}' is a file, not a folder"):
        validate_config(bad, source="c.yaml")

    def offline(*a, **k):
        raise ConnectionError("no network")

    monkeypatch.setattr(pooch, "retrieve", offline)  # INVDESIGN_DATA_MIRROR is not validated with the config
    with pytest.raises(InvdesignError, match=f"the mirror {mirror} is a file, not a folder, and cannot download"):
        fetch(MP_ELASTICITY, str(mirror), tmp_path / "cache")


# ---------------------------------------------------------------------------------------------- a missing intermediate


def test_an_oracle_batch_deleted_after_the_run_stops_the_plan_with_the_recipe(tmp_path):
    from invdesign.artifacts import batch_ids
    from invdesign.pipeline.verify import _write_batches

    folder = tmp_path / "oracle" / "batches"
    assert _write_batches(pd.DataFrame({"rank": range(5)}), str(folder), 2, "xtb") == 3
    assert batch_ids(folder) == ["000", "001", "002"]
    (folder / "batch_001.parquet").unlink()
    with pytest.raises(InvdesignError) as err:
        batch_ids(folder)
    msg = str(err.value)
    assert msg.startswith(f"{folder}: batch_001.parquet is gone (1 of the 3 batches the checkpoint wrote)"), msg
    assert f"--force {folder}" in msg and "--touch" in msg
    (folder / "batches.json").unlink()  # a folder written before the manifest: the files as they are
    assert batch_ids(folder) == ["000", "002"]


# ---------------------------------------------------------------------------------------------- clock skew


def test_a_file_from_the_future_is_named_while_planning(repo, tmp_path):
    import time

    results = tmp_path / "r"
    (results / "tiny_mol" / "data").mkdir(parents=True)
    future = results / "tiny_mol" / "data" / "dataset.parquet"
    future.write_bytes(b"PAR1")
    (results / "now.txt").write_text("x")
    os.utime(future, (time.time() + 3600, time.time() + 3600))
    res = run(repo, "snakemake", "-n", "--cores", "1", "--quiet", "rules", "--configfile", TINY_TEXT,
              "--config", f"results={results}", "--", f"{results}/tiny_mol/data/target.json")
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("invdesign warning")]
    assert len(warnings) == 1 and "1 file(s) have a modification time in the future, up to 3" in warnings[0]
    assert str(future) in warnings[0] and "touch -c" in warnings[0], res.stderr[-2000:]


def test_a_bad_config_value_given_with_config_is_blamed_on_config_not_on_the_file(repo, tmp_path):
    res = run(repo, "snakemake", "-n", "--cores", "1", "--configfile", TINY_TEXT, "--config", f"results={tmp_path}",
              'runtime={"threads": 0}')
    lines = error_lines(res)
    assert res.returncode == 1 and len(lines) == 1, res.stderr[-2000:]
    assert lines[0].startswith("invdesign error: --config: runtime.threads: 0 is less than"), lines[0]
    assert TINY_TEXT not in lines[0]
