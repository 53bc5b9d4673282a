"""A run with no valid or no passing candidate says so, with the count of each reject reason, in one log line of
the filter step and in the summary."""

import json

import pandas as pd

from invdesign.pipeline.filter import empty_run_note, summary


def checked_samples(valid, unique, passes, reasons):
    return pd.DataFrame({"valid": valid, "unique": unique, "passes": passes, "reject_reason": reasons})


def reasons(note: str) -> dict[str, int]:
    return {k: int(n) for k, n in (x.rsplit(" ", 1) for x in note.split("reject reasons: ")[1].split(", "))}


def test_no_valid_sample_is_said_with_its_reasons():
    checked = checked_samples([False] * 4, [False] * 4, [False] * 4,
                              ["invalid: fewer than 3 heavy atoms", "invalid: elements ['Xe'] not in the training data",
                               "invalid: fewer than 2 heavy atoms", "invalid composition 3 Os"])
    keep = checked[checked["valid"] & checked["unique"]]
    note = empty_run_note(checked, keep)
    assert note.startswith("no valid candidate: 4 samples, 0 valid; reject reasons: invalid: fewer than N heavy "
                           "atoms 2, ")
    assert reasons(note) == {"invalid: fewer than N heavy atoms": 2, "invalid composition N Os": 1,
                             "invalid: elements [...] not in the training data": 1}


def test_no_passing_candidate_counts_filter_and_objective_reasons():
    checked = checked_samples([True, True, True, False], [True, False, True, False], [False] * 4,
                              ["structural alert: N-F", "duplicate of a higher sample", "", "invalid: no parse"])
    keep = checked[checked["valid"] & checked["unique"]].reset_index(drop=True)
    keep.loc[1, "reject_reason"] = "objective sa_score 4.9 > 4.5"
    note = empty_run_note(checked, keep)
    assert note.startswith("no passing candidate: 4 samples, 3 valid; reject reasons: ")
    assert reasons(note) == {"duplicate of a higher sample": 1, "invalid: no parse": 1, "structural alert: N-F": 1,
                             "objective sa_score N > N": 1}
    assert empty_run_note(checked, keep.assign(passes=[True, False])) == ""


def test_the_summary_says_why_a_run_was_empty(tmp_path):
    paths = []
    note = "no valid candidate: 200 samples, 0 valid; reject reasons: invalid 200"
    for name, note in (("full", ""), ("empty", note)):
        m, o = tmp_path / f"{name}_metrics.json", tmp_path / f"{name}_oracle.json"
        m.write_text(json.dumps({"campaign": name, "target": {"min": 1}, "n_samples": 200, "empty_run": note}))
        o.write_text(json.dumps({"confirmed_by": "x", "n_confirmed": 0}))
        paths.append((str(m), str(o)))
    summary(metrics=[p for p, _ in paths], oracle=[q for _, q in paths], csv=str(tmp_path / "summary.csv"),
            by_generator=str(tmp_path / "summary_by_generator.csv"))
    rows = pd.read_csv(tmp_path / "summary.csv", keep_default_na=False)
    assert list(rows.columns[:5]) == ["campaign", "confirmed_by", "n_confirmed", "n_checked_by_confirming_tier",
                                      "empty_run"]  # it leads, beside the confirmed count
    rows = rows.set_index("campaign")
    assert rows.loc["empty", "empty_run"].startswith("no valid candidate: 200 samples")
    assert rows.loc["full", "empty_run"] == ""


def test_the_landing_page_of_an_empty_crystal_run_says_why(tmp_path):
    from tests.test_landing import run_page

    note = "no valid candidate: 200 samples, 0 valid; reject reasons: invalid composition 200"
    table = pd.DataFrame({"final_rank": pd.Series(dtype=int), "formula": pd.Series(dtype=object)})
    page = run_page(tmp_path, "crystals", table, {"n_confirmed": 0, "n_checked_by_confirming_tier": 0}, {},
                    {"min": 150.0}, "bulk_modulus_gpa", "GPa",
                    funnel={"sampled": 200, "valid": 0, "unique": 0, "novel": 0, "passes": 0, "in_target": 0},
                    empty_run=note)
    assert f"<b>Empty run</b>: {note}." in page
    assert ("sampled: 200, valid: 0, unique: 0, novel: 0, passes the filters: 0, in target (predicted): 0, "
            "checked by CHGNet: 0, confirmed: 0") in page
    assert "0 of 0 candidates checked by CHGNet (0 without an error)" in page
