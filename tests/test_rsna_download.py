"""download_rsna against a fake `kaggle` program on PATH (no network): credentials, 403, success,
resuming an interrupted run."""

from __future__ import annotations

import os
import stat
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from frugalmed.errors import FrugalmedError
from frugalmed.rsna.download import download_rsna, find_credentials

COMPETITION = "rsna-breast-cancer-detection"
FAKE_KAGGLE = f"""#!{sys.executable}
import os, sys, zipfile
from pathlib import Path
log = Path(os.environ["FAKE_KAGGLE_CALLS"])
log.write_text(log.read_text() + " ".join(sys.argv[1:]) + "\\n" if log.exists() else " ".join(sys.argv[1:]) + "\\n")
mode = os.environ.get("FAKE_KAGGLE_MODE", "ok")
if mode == "403":
    print("403 Client Error: Forbidden for url: https://www.kaggle.com/api/v1/competitions/data/download-all/x")
    sys.exit(1)
if mode == "401":
    print("401 - Unauthorized")
    sys.exit(1)
args = sys.argv[1:]
assert args[:2] == ["competitions", "download"], args
out = Path(args[args.index("-p") + 1]) / (args[args.index("-c") + 1] + ".zip")
with zipfile.ZipFile(out, "w") as z:
    z.writestr("train.csv", "site_id,patient_id,image_id\\n1,10006,462822612\\n")
    z.writestr("train_images/10006/462822612.dcm", b"DICM" * 1000)
    z.writestr("test.csv", "x\\n")
print("Downloading", out.name)
"""


@pytest.fixture
def fake_kaggle(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "kaggle"
    exe.write_text(FAKE_KAGGLE)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("FAKE_KAGGLE_CALLS", str(calls))
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kaggle
    return calls


def ncalls(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_missing_credentials_say_what_to_do(fake_kaggle, tmp_path):
    raw = tmp_path / "raw"
    with pytest.raises(FrugalmedError, match=r"No Kaggle credentials.*KAGGLE_API_TOKEN.*kaggle.json"):
        download_rsna(raw, raw / ".done")
    assert ncalls(fake_kaggle) == 0 and not (raw / ".done").exists()


def test_credentials_are_found_where_the_cli_looks(tmp_path):
    assert find_credentials({}, tmp_path) is None
    assert "KAGGLE_API_TOKEN" in find_credentials({"KAGGLE_API_TOKEN": "x"}, tmp_path)
    assert find_credentials({"KAGGLE_USERNAME": "u"}, tmp_path) is None
    assert "KAGGLE_KEY" in find_credentials({"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}, tmp_path)
    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle" / "kaggle.json").write_text("{}")
    assert find_credentials({}, tmp_path).endswith("kaggle.json")


def test_403_asks_to_accept_the_rules(fake_kaggle, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    monkeypatch.setenv("FAKE_KAGGLE_MODE", "403")
    raw = tmp_path / "raw"
    with pytest.raises(FrugalmedError, match=r"accept the competition rules at "
                       r"https://www.kaggle.com/competitions/rsna-breast-cancer-detection/rules"):
        download_rsna(raw, raw / ".done")
    assert ncalls(fake_kaggle) == 1 and not (raw / ".done").exists()


def test_401_asks_for_a_new_token(fake_kaggle, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "u")
    monkeypatch.setenv("KAGGLE_KEY", "k")
    monkeypatch.setenv("FAKE_KAGGLE_MODE", "401")
    with pytest.raises(FrugalmedError, match="401"):
        download_rsna(tmp_path / "raw", tmp_path / "raw" / ".done")


def test_success_extracts_and_writes_the_marker_last(fake_kaggle, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    raw = tmp_path / "raw"
    download_rsna(raw, raw / ".done")
    assert fake_kaggle.read_text().split() == ["competitions", "download", "-c", COMPETITION, "-p", str(raw)]
    assert (raw / "train.csv").read_text().startswith("site_id")
    assert (raw / "train_images" / "10006" / "462822612.dcm").stat().st_size == 4000
    assert not (raw / f"{COMPETITION}.zip").exists()  # deleted once extracted
    assert (raw / ".done").stat().st_mtime_ns >= (raw / "train.csv").stat().st_mtime_ns
    download_rsna(raw, raw / ".done")  # a re-run after success downloads nothing
    assert ncalls(fake_kaggle) == 1


def test_interrupted_extraction_resumes_without_downloading_again(fake_kaggle, tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    with zipfile.ZipFile(raw / f"{COMPETITION}.zip", "w") as archive:  # a complete download
        archive.writestr("train.csv", "site_id\n1\n")
        archive.writestr("train_images/1/2.dcm", b"x" * 100)
    (raw / "train.csv").write_text("site_id\n1\n")  # extracted before the interruption
    (raw / "train_images" / "1").mkdir(parents=True)
    (raw / "train_images" / "1" / "2.dcm").write_bytes(b"x" * 10)  # cut off mid-file
    download_rsna(raw, raw / ".done")  # no credentials needed: nothing to download
    assert ncalls(fake_kaggle) == 0
    assert (raw / "train_images" / "1" / "2.dcm").stat().st_size == 100
    assert (raw / ".done").exists() and not (raw / f"{COMPETITION}.zip").exists()


def test_a_partial_zip_is_downloaded_again(fake_kaggle, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / f"{COMPETITION}.zip").write_bytes(b"PK\x03\x04 truncated")
    download_rsna(raw, raw / ".done")
    assert ncalls(fake_kaggle) == 1 and (raw / ".done").exists()


def test_missing_cli_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FrugalmedError, match="pip install kaggle"):
        download_rsna(tmp_path / "raw", tmp_path / "raw" / ".done")
