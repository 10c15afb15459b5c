import pandas as pd
import pytest

from frugalmed import atomic


def test_write_json_roundtrip(tmp_path):
    """What is read back is what was written, NumPy scalars and paths included, key order
    kept, and no temporary file is left beside it (catches a truncated or reordered write)."""
    import json
    from pathlib import Path

    import numpy as np

    record = {"b": 1, "a": [1.5, None, "x"], "n": np.float32(0.25), "i": np.int64(7),
              "flag": np.bool_(True), "nested": {"p": Path("results/x.csv")}}
    path = tmp_path / "sub" / "x.json"
    atomic.write_json(path, record)
    back = json.loads(path.read_text())
    assert back == {"b": 1, "a": [1.5, None, "x"], "n": 0.25, "i": 7, "flag": True,
                    "nested": {"p": "results/x.csv"}}
    assert list(back) == list(record)
    assert list(path.parent.iterdir()) == [path]
    # overwriting replaces the whole file (no tail of the longer old content survives)
    atomic.write_json(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}


def test_unserialisable_value_fails_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "x.json"
    atomic.write_json(path, {"old": True})
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        atomic.write_json(path, {"bad": object()})
    assert path.read_text() == '{\n  "old": true\n}\n'
    assert list(tmp_path.iterdir()) == [path]


def test_failed_block_leaves_nothing(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [path]


def test_write_csv(tmp_path):
    path = tmp_path / "t.csv"
    atomic.write_csv(path, pd.DataFrame({"a": [1, 2]}))
    assert path.read_text().splitlines() == ["a", "1", "2"]


def test_outputs_get_normal_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = tmp_path / "shared.json"
        atomic.write_json(path, {})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
