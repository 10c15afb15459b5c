import pandas as pd
import pytest

from frugalmed import atomic


def test_write_json_roundtrip(tmp_path):
    path = tmp_path / "sub" / "x.json"
    atomic.write_json(path, {"a": 1})
    assert path.read_text().strip().startswith("{")
    assert list(path.parent.iterdir()) == [path]


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
