"""Faults over a whole campaign, as a user meets them (issue #26, the slow part of the fuzz suite).

    python -m bench.fuzz_campaign [--out bench/out/fuzz] [--records bench/records/fuzz]

Runs the tiny molecule campaign (config/tests/tiny.yaml, its molecule part) with ``snakemake --cores 2`` as a user
would, then one fault per case on the finished results, and after each case checks what the issue asks: the exit
code, the one-line ``invdesign error`` naming the file or key and the fix, and that nothing already computed was
lost (every model and table keeps its bytes unless the case is about rebuilding it). The fast cases of each
class run in CI (tests/test_fuzz.py and others); these need a whole run and a few minutes each.

Writes ``results.json`` (one entry per case: outcome, exit code, message, seconds) to ``--records``; the table in
docs/reliability.md comes from it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from bench.lib.common import ROOT, provenance

#: the packages whose versions the summary records
PACKAGES = ("snakemake", "torch", "rdkit", "tblite", "pyscf")
CAMP = "tiny_mol"


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every model and table of the campaign (what must never be lost)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix in (".pt", ".parquet", ".csv") and "logs" not in p.parts:
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


class Fuzz:
    def __init__(self, out: Path, mirror: str):
        self.out = out
        self.results = out / "results"
        cfg = yaml.safe_load((ROOT / "config" / "tests" / "tiny.yaml").read_text())
        cfg["campaigns"] = {CAMP: cfg["campaigns"][CAMP]}
        cfg["results"] = str(self.results)
        cfg["data"] = {"mirror": mirror, "cache": str(ROOT / "data" / "cache")}
        self.config = out / "fuzz.yaml"
        self.config.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self.cases: dict[str, dict] = {}

    def snakemake(self, *extra, config: Path | None = None, timeout=900, env=None,
                  prefix=()) -> subprocess.CompletedProcess:
        cmd = [*prefix, sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", str(config or self.config),
               *extra]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})

    def record(self, name: str, what: str, ok: bool, res: subprocess.CompletedProcess | None, seconds: float,
               note: str = "") -> None:
        lines = [ln for ln in (res.stderr if res else "").splitlines() if ln.startswith("invdesign error")]
        self.cases[name] = {"class": what, "ok": bool(ok), "exit_code": res.returncode if res else None,
                            "message": lines[0] if lines else None, "n_error_lines": len(lines),
                            "seconds": round(seconds, 1), "note": note}
        print(f"[{'ok' if ok else 'FAIL'}] {name}: {note or (lines[0] if lines else '')}", flush=True)

    def one_line_error(self, res, *must) -> bool:
        lines = [ln for ln in res.stderr.splitlines() if ln.startswith("invdesign error")]
        return res.returncode != 0 and len(lines) == 1 and all(m in lines[0] for m in must)

    def nothing_to_do(self) -> bool:
        res = self.snakemake("-n")
        return "Nothing to be done" in res.stdout + res.stderr

    # ------------------------------------------------------------------ cases
    def baseline(self) -> None:
        t0 = time.monotonic()
        res = self.snakemake()
        ok = res.returncode == 0 and (self.results / CAMP / "candidates_verified.csv").exists()
        self.record("baseline", "the whole tiny campaign", ok, res, time.monotonic() - t0,
                    "finished" if ok else res.stderr[-500:])
        if not ok:
            raise SystemExit("the baseline run failed; nothing to fuzz")

    def killed_mid_run(self) -> None:
        """SIGKILL to the whole snakemake process group while a training job runs; then the plain command again."""
        shutil.rmtree(self.results / CAMP / "models")
        kept = {k: v for k, v in digest(self.results / CAMP).items() if not k.startswith("models")}
        t0 = time.monotonic()
        cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", str(self.config)]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        models = self.results / CAMP / "models"
        while time.monotonic() - t0 < 600 and not (models.exists() and any(models.glob("*.pt"))):
            time.sleep(1)
        time.sleep(3)  # a second training job is under way
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # what a user does: the same command again, then what Snakemake's message says (--unlock after a kill, then
        # --rerun-incomplete for the jobs the kill interrupted); the steps needed are recorded
        steps, flags, res = ["snakemake"], [], self.snakemake()
        for _ in range(3):
            if res.returncode and "--unlock" in res.stderr:
                steps.append("snakemake --unlock")
                self.snakemake("--unlock")
            elif res.returncode and "--rerun-incomplete" in res.stderr and not flags:
                flags = ["--rerun-incomplete"]
            else:
                break
            steps.append(" ".join(["snakemake", *flags]))
            res = self.snakemake(*flags)
        after = digest(self.results / CAMP)
        lost = [k for k, v in kept.items() if after.get(k) != v and not k.startswith(("candidates", "oracle",
                                                                                         "samples", "report"))]
        ok = res.returncode == 0 and all((models / f"generator_{g}.pt").exists() for g in ("vae", "diffusion", "ebm"))
        note = (f"finished after: {' ; '.join(steps)}" if ok else
                f"after {' ; '.join(steps)}: " + " | ".join(ln for ln in res.stderr.splitlines()[-6:]))
        self.record("killed_mid_training", "SIGKILL of snakemake and its jobs during training", ok and not lost, res,
                    time.monotonic() - t0, note + (f"; changed: {lost}" if lost else ""))

    def damaged(self, name: str, rel: str, damage, what: str, forced: str | None = None, kept=()) -> None:
        """Damage (or delete) one intermediate: the run stops while planning with one line naming it, nothing is
        lost, and the printed recipe (--force FILE, or the folder ``forced`` it belongs to, then --touch) restores a
        finished campaign in which the outputs ``kept`` keep their bytes."""
        path = self.results / CAMP / rel
        target = self.results / CAMP / (forced or rel)
        good, st = path.read_bytes(), path.stat()
        before = digest(self.results / CAMP)
        t0 = time.monotonic()
        damage(path)
        res = self.snakemake()
        stopped = self.one_line_error(res, str(target), path.name, "--force", "--touch")
        after = digest(self.results / CAMP)
        lost = [k for k, v in before.items() if k != rel and after.get(k) != v]
        fixed = self.snakemake("--force", str(target)).returncode == 0 and self.snakemake("--touch").returncode == 0
        done = self.nothing_to_do()
        changed = [k for k in kept if digest(self.results / CAMP).get(k) != before.get(k)]
        if not (fixed and done):  # leave the results as they were for the next case
            path.write_bytes(good)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        self.record(name, what, stopped and not lost and fixed and done and not changed, res, time.monotonic() - t0,
                    f"stopped with one line: {stopped}; outputs lost: {lost or 'none'}; recipe restored the campaign: "
                    f"{fixed and done}" + (f"; the recipe changed {changed}" if changed else ""))

    def clock_skew(self) -> None:
        """dataset.parquet an hour in the future (a skewed clock on a shared filesystem, a copied folder): a dry run
        names it in one warning line and touches nothing; how many jobs the plan (Snakemake's, on file times) would
        redo is recorded."""
        path = self.results / CAMP / "data" / "dataset.parquet"
        st, before = path.stat(), digest(self.results / CAMP)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 3600 * 10**9))
        t0 = time.monotonic()
        res = self.snakemake("-n")
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        warned = [ln for ln in res.stderr.splitlines() if ln.startswith("invdesign warning")]
        ok = (res.returncode == 0 and len(warned) == 1 and str(path) in warned[0] and "in the future" in warned[0]
              and digest(self.results / CAMP) == before)
        jobs = next((ln.split()[-1] for ln in res.stdout.splitlines() if ln.startswith("total")), "0")
        self.record("clock_skew", "an input with a modification time an hour in the future", ok, res,
                    time.monotonic() - t0, f"{warned[0] if warned else 'no warning'}; the dry run plans {jobs} jobs")

    def disk_full(self) -> None:
        """The results disk fills up during featurize: in a private mount namespace, a tmpfs with room for
        dataset.parquet but not for graphs.pt hides the campaign's data folder, and snakemake makes graphs.pt. One
        line naming the folder; the finished folder underneath keeps its bytes, and nothing is left to do."""
        data = self.results / CAMP / "data"
        room = (data / "dataset.parquet").stat().st_size + 16384
        mount = ["unshare", "--mount", *(["--map-root-user"] if os.geteuid() else []), "sh", "-c",
                 f'mount -t tmpfs -o size={room} tmpfs "$0" && exec "$@"', str(data)]
        before = digest(self.results / CAMP)
        t0 = time.monotonic()
        res = self.snakemake("--", str(data / "graphs.pt"), prefix=mount)
        ok = (self.one_line_error(res, f"no space left on {data}") and digest(self.results / CAMP) == before
              and self.nothing_to_do())
        self.record("disk_full", "a full results disk during featurize", ok, res, time.monotonic() - t0,
                    "" if ok else res.stderr[-300:])

    def deleted_model(self) -> None:
        model = self.results / CAMP / "models" / "generator_ebm.pt"
        model.unlink()
        t0 = time.monotonic()
        res = self.snakemake()
        ok = res.returncode == 0 and model.exists() and "rule train_generator" in res.stderr \
            and "rule featurize" not in res.stderr
        self.record("deleted_model", "a trained model deleted after its candidates were made", ok, res,
                    time.monotonic() - t0, "retrained alone, the campaign finished" if ok else res.stderr[-300:])

    def config_case(self, name: str, what: str, edit, *must) -> None:
        """A mistake in the config of a finished campaign: one line, exit 1, nothing touched."""
        cfg = yaml.safe_load(self.config.read_text())
        edit(cfg["campaigns"][CAMP], cfg)
        bad = self.out / f"{name}.yaml"
        bad.write_text(yaml.safe_dump(cfg, sort_keys=False))
        before = digest(self.results / CAMP)
        t0 = time.monotonic()
        res = self.snakemake(config=bad)
        ok = self.one_line_error(res, *must) and digest(self.results / CAMP) == before
        self.record(name, what, ok, res, time.monotonic() - t0)

    def yaml_error(self) -> None:
        bad = self.out / "broken.yaml"
        bad.write_text(self.config.read_text().replace("campaigns:", "campaigns: [", 1))
        t0 = time.monotonic()
        res = self.snakemake(config=bad)
        check = subprocess.run([sys.executable, "-m", "invdesign.config", str(bad)], cwd=ROOT, capture_output=True,
                               text=True)
        ok = res.returncode != 0 and check.returncode == 1 and str(bad) in check.stderr and "line" in check.stderr
        self.record("yaml_syntax_error", "a YAML syntax error in --configfile", ok, res, time.monotonic() - t0,
                    "snakemake: " + (res.stderr.strip().splitlines() or ["?"])[-1][:160]
                    + " | python -m invdesign.config: " + check.stderr.strip())

    def two_runs_at_once(self) -> None:
        """A second snakemake in the same folder while one runs: Snakemake's lock refuses it, nothing is touched."""
        self.snakemake("--unlock")
        self.snakemake("--rerun-incomplete")  # a finished campaign first
        model = self.results / CAMP / "models" / "predictor.pt"
        model.unlink()
        t0 = time.monotonic()
        cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", str(self.config)]
        first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(8)
        res = self.snakemake()
        first.wait(timeout=900)
        ok = res.returncode != 0 and "lock" in res.stderr.lower() and first.returncode == 0 and model.exists()
        self.record("two_runs_at_once", "a second snakemake in the same folder during a run", ok, res,
                    time.monotonic() - t0, "refused by Snakemake's lock: "
                    + next((ln for ln in res.stderr.splitlines() if "lock" in ln.lower()), "")[:160])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "fuzz"))
    ap.add_argument("--records", default=str(ROOT / "bench" / "records" / "fuzz"))
    ap.add_argument("--mirror", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--cases", nargs="+", default=None, help="run only these cases (after the baseline); their "
                    "results replace those of the same name in --records")
    args = ap.parse_args(argv)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    f = Fuzz(out, args.mirror)
    cases = {
        "truncated_dataset": lambda: f.damaged("truncated_dataset", "data/dataset.parquet",
                                               lambda p: p.write_bytes(p.read_bytes()[:-100]),
                                               "a truncated dataset.parquet"),
        "dataset_without_split": lambda: f.damaged(
            "dataset_without_split", "data/dataset.parquet",
            lambda p: __import__("pandas").read_parquet(p).drop(columns="split").to_parquet(p),
            "a whole dataset.parquet without its split column"),
        "truncated_graphs": lambda: f.damaged("truncated_graphs", "data/graphs.pt",
                                              lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
                                              "a truncated graphs.pt"),
        "garbage_candidates": lambda: f.damaged("garbage_candidates", "candidates.parquet",
                                                lambda p: p.write_bytes(b"not parquet at all"),
                                                "candidates.parquet overwritten with text"),
        "deleted_model": f.deleted_model,
        "deleted_batch": lambda: f.damaged("deleted_batch", "oracle/batches/batch_000.parquet", lambda p: p.unlink(),
                                           "an oracle batch deleted after a finished run", forced="oracle/batches",
                                           kept=("oracle/checked.parquet",)),
        "clock_skew": f.clock_skew,
        "disk_full": f.disk_full,
        "unknown_key": lambda: f.config_case("unknown_key", "a typo in a key of a finished campaign's config",
                                             lambda c, cfg: c.update(targte=c.pop("target")), "targte"),
        "nan_target": lambda: f.config_case("nan_target", "a NaN in the target",
                                            lambda c, cfg: c.update(target={"window": [float("nan"), 6]}),
                                            "not a finite number"),
        "target_outside_data": lambda: f.config_case(
            "target_outside_data", "a target window outside the data's range",
            lambda c, cfg: c.update(target={"window": [40.0, 50.0], "unit": "eV"}), "target"),
        "cuda_without_gpu": lambda: f.config_case("cuda_without_gpu", "runtime.device: cuda on a machine without a GPU",
                                                  lambda c, cfg: cfg.update(runtime={"device": "cuda", "threads": 1}),
                                                  "GPU"),
        "empty_results": lambda: f.config_case("empty_results", "results: ''", lambda c, cfg: cfg.update(results=""),
                                               "results"),
        "yaml_syntax_error": f.yaml_error,
        "killed_mid_training": f.killed_mid_run,
        "two_runs_at_once": f.two_runs_at_once,
    }
    unknown = sorted(set(args.cases or ()) - set(cases))
    if unknown:
        ap.error(f"no case {', '.join(unknown)}; the cases: {', '.join(cases)}")
    t0 = time.monotonic()
    f.baseline()
    for name, case in cases.items():
        if args.cases is None or name in args.cases:
            case()
    rec = Path(args.records)
    rec.mkdir(parents=True, exist_ok=True)
    if args.cases is not None and (rec / "results.json").exists():  # a partial run updates the earlier record
        f.cases = {**json.loads((rec / "results.json").read_text())["cases"], **f.cases}
    summary = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine":
               f"{os.cpu_count()} cores, {platform.machine()}, no GPU" if not os.environ.get("CUDA_VISIBLE_DEVICES")
               else platform.machine(), "command": " ".join(["python -m bench.fuzz_campaign", *(argv or sys.argv[1:])]),
               "minutes": round((time.monotonic() - t0) / 60, 1), "n_ok": sum(c["ok"] for c in f.cases.values()),
               "n_cases": len(f.cases), "provenance": provenance(PACKAGES), "cases": f.cases}
    (rec / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "cases"}))
    return 0 if summary["n_ok"] == summary["n_cases"] else 1


if __name__ == "__main__":
    sys.exit(main())
