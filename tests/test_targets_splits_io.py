import numpy as np
import pytest

from invdesign.errors import InvdesignError
from invdesign.io import atomic_path, write_json
from invdesign.splits import assign_splits
from invdesign.targets import aim_point, check_target_in_range, distance_to_target, in_target


def test_distance_and_membership():
    t = {"window": [4.0, 5.0]}
    d = distance_to_target([3.5, 4.0, 4.5, 5.0, 6.0, np.nan], t)
    assert np.allclose(d[:5], [0.5, 0, 0, 0, 1.0])
    assert in_target([3.5, 4.5, np.nan], t).tolist() == [False, True, False]
    assert np.allclose(distance_to_target([100, 300], {"min": 250}), [150, 0])


def test_aim_point_is_inside_target():
    lo, hi = aim_point({"window": [4.0, 5.0]}, y_std=1.3)
    assert 4.0 < lo < hi < 5.0
    lo, hi = aim_point({"min": 250}, y_std=80)
    assert lo == 290 and hi == np.inf


def test_target_outside_data_range_is_an_error():
    with pytest.raises(InvdesignError, match="outside the data's range"):
        check_target_in_range({"window": [20, 30]}, [1, 2, 3], "campaigns.x", "eV")
    with pytest.raises(InvdesignError, match="outside"):
        check_target_in_range({"min": 600}, [10, 400], "campaigns.x", "GPa")
    stats = check_target_in_range({"min": 2.5}, [1, 2, 3, 4], "campaigns.x")
    assert stats["share_in_target"] == 0.5


def test_splits_are_deterministic_and_order_free():
    ids = [f"m{i}" for i in range(5000)]
    a = assign_splits(ids, 0.1, 0.1, seed=0)
    b = assign_splits(ids[::-1], 0.1, 0.1, seed=0)[::-1]
    assert (a == b).all()
    share = {s: np.mean(a == s) for s in ("train", "val", "test")}
    assert abs(share["val"] - 0.1) < 0.02 and abs(share["test"] - 0.1) < 0.02
    # adding rows never moves existing ones
    c = assign_splits(ids + ["new1", "new2"], 0.1, 0.1, seed=0)[:5000]
    assert (a == c).all()
    assert (assign_splits(ids, 0.1, 0.1, seed=1) != a).any()


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    write_json({"a": np.float32(1.5)}, target)
    assert target.read_text().strip().startswith("{")


def test_write_json_is_strict_json(tmp_path):
    """NaN/inf (e.g. a metric of an empty group) become null: jq and JSON.parse reject bare NaN."""
    import json

    target = tmp_path / "m.json"
    write_json({"nan": float("nan"), "np": np.float64("inf"), "arr": np.array([1.0, np.nan]),
                "nested": [{"x": np.float32(2.5)}], "ok": 1}, target)
    text = target.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"nan": None, "np": None, "arr": [1.0, None], "nested": [{"x": 2.5}], "ok": 1}
