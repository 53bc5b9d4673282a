"""`snakemake --report` before a finished run refuses with one line (not Snakemake's 'marked for report but does
not exist')."""

from invdesign.pipeline.report import report_requested
from tests.test_workflow import snakemake


def test_report_before_a_run_refuses_with_one_line(repo, tmp_path):
    res = snakemake(repo, "--report", str(tmp_path / "report.html"), "--configfile", "config/tests/tiny.yaml",
                    "--config", f"results={tmp_path}/results")
    assert res.returncode == 1
    lines = [ln for ln in res.stderr.splitlines() if "invdesign error" in ln]
    assert len(lines) == 1 and "needs a finished run" in lines[0] and "report/property_distribution.png" in lines[0]
    assert "marked for report but does not exist" not in res.stderr


def test_only_a_report_from_existing_results_is_checked():
    assert report_requested(["snakemake", "--report", "r.html"]) and report_requested(["x", "--report=r.html"])
    assert not report_requested(["snakemake", "--report", "r.html", "--report-after-run"])
    assert not report_requested(["snakemake", "-n"])
