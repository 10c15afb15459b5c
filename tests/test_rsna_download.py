"""download_rsna against a fake `kaggle` program on PATH (no network): credentials, 403, success,
resuming an interrupted run, damaged or truncated zips, the disk checks."""

from __future__ import annotations

import os
import shutil
import stat
import sys
import zipfile
from pathlib import Path

import pytest

from frugalmed import diskspace
from frugalmed.errors import FrugalmedError
from frugalmed.rsna import download
from frugalmed.rsna.download import download_rsna, find_credentials

COMPETITION = "rsna-breast-cancer-detection"
FAKE_KAGGLE = f"""#!{sys.executable}
import os, sys, zipfile
from pathlib import Path
log = Path(os.environ["FAKE_KAGGLE_CALLS"])
previous = log.read_text().splitlines() if log.exists() else []
log.write_text("\\n".join(previous + [" ".join(sys.argv[1:])]) + "\\n")
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
if mode == "stale" and out.exists() and "--force" not in args:
    print(out.name + ": Skipping, found more recently modified local copy (use --force to force download)")
    sys.exit(0)
with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
    z.writestr("train.csv", "site_id,patient_id,image_id\\n1,10006,462822612\\n")
    z.writestr("train_images/10006/462822612.dcm", b"DICM" * 1000)
    z.writestr("test.csv", "x\\n")
if mode == "damaged" or (mode == "damaged_once" and len(previous) == 0):
    data = out.read_bytes()  # one flipped byte inside the stored DICOM: its CRC-32 fails
    at = data.index(b"DICMDICM") + 4
    out.write_bytes(data[:at] + b"X" + data[at + 1:])
print("Downloading", out.name)
"""
SIZES = (10_000, 10_000)  # the zip and its files, estimated, in the tests' little world


@pytest.fixture(autouse=True)
def _small_estimates(monkeypatch):
    """The real estimates (315 GB each) would fail the disk check on a test machine."""
    monkeypatch.setattr(download, "ZIP_BYTES_ESTIMATE", SIZES[0])
    monkeypatch.setattr(download, "FILES_BYTES_ESTIMATE", SIZES[1])


def _disk_with_free(monkeypatch, free_bytes: int) -> None:
    usage = shutil.disk_usage("/")
    fake = type(usage)(usage.total, usage.total - free_bytes, free_bytes)
    monkeypatch.setattr(diskspace.shutil, "disk_usage", lambda path: fake)


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


def _good_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("train.csv", "site_id\n1\n")
        archive.writestr("train_images/1/2.dcm", b"x" * 100)


def test_a_damaged_zip_is_deleted_and_downloaded_again(fake_kaggle, tmp_path, monkeypatch):
    """A complete-looking zip whose member fails its CRC-32: nothing damaged stays in place,
    the zip is fetched again, the run ends complete."""
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    monkeypatch.setenv("FAKE_KAGGLE_MODE", "damaged_once")
    raw = tmp_path / "raw"
    download_rsna(raw, raw / ".done")
    assert ncalls(fake_kaggle) == 2
    assert (raw / "train_images" / "10006" / "462822612.dcm").read_bytes() == b"DICM" * 1000
    assert not list(raw.rglob("*.partial")) and (raw / ".done").exists()


def test_a_zip_damaged_twice_stops_with_advice(fake_kaggle, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    monkeypatch.setenv("FAKE_KAGGLE_MODE", "damaged")
    raw = tmp_path / "raw"
    with pytest.raises(FrugalmedError, match="damaged again: check the disk"):
        download_rsna(raw, raw / ".done")
    assert ncalls(fake_kaggle) == 2
    assert not (raw / "train_images" / "10006" / "462822612.dcm").exists()
    assert not (raw / ".done").exists()


def test_a_truncated_zip_the_cli_keeps_is_forced_again(fake_kaggle, tmp_path, monkeypatch):
    """The CLI skips a local file it takes for up to date; a cut-off zip must not stay."""
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    monkeypatch.setenv("FAKE_KAGGLE_MODE", "stale")
    raw = tmp_path / "raw"
    raw.mkdir()
    _good_zip(raw / f"{COMPETITION}.zip")
    data = (raw / f"{COMPETITION}.zip").read_bytes()
    (raw / f"{COMPETITION}.zip").write_bytes(data[: len(data) // 2])  # end record cut off
    download_rsna(raw, raw / ".done")
    calls = fake_kaggle.read_text().splitlines()
    assert len(calls) == 2 and "--force" not in calls[0] and calls[1].endswith("--force")
    assert (raw / ".done").exists()


def test_a_zip_with_bytes_missing_inside_is_downloaded_again(fake_kaggle, tmp_path, monkeypatch):
    """Bytes lost in the middle (the end record intact): the directory no longer matches."""
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    raw = tmp_path / "raw"
    raw.mkdir()
    _good_zip(raw / f"{COMPETITION}.zip")
    data = (raw / f"{COMPETITION}.zip").read_bytes()
    at = data.index(b"x" * 100)
    (raw / f"{COMPETITION}.zip").write_bytes(data[:at] + data[at + 60:])
    with pytest.raises(download.CorruptZip):
        download.inspect_zip(raw / f"{COMPETITION}.zip")
    download_rsna(raw, raw / ".done")
    assert ncalls(fake_kaggle) == 1 and (raw / ".done").exists()


def test_a_sound_zip_of_something_else_is_not_extracted(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    with zipfile.ZipFile(raw / f"{COMPETITION}.zip", "w") as archive:
        archive.writestr("sample_submission.csv", "x\n")
    with pytest.raises(FrugalmedError, match="not the rsna-breast-cancer-detection files"):
        download_rsna(raw, raw / ".done")
    assert not (raw / "sample_submission.csv").exists()


def test_download_needs_room_for_zip_and_files_together(fake_kaggle, tmp_path, monkeypatch):
    """Fails before the CLI runs, stating the need (zip + files) and the key to change."""
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    _disk_with_free(monkeypatch, diskspace.RESERVE_BYTES + 15_000)  # the zip fits, not both
    raw = tmp_path / "raw"
    with pytest.raises(FrugalmedError, match=r"needs 0\.0 GB.*datasets\.rsna\.raw_dir") as err:
        download_rsna(raw, raw / ".done")
    assert "side by side" in str(err.value)
    assert ncalls(fake_kaggle) == 0


def test_download_check_counts_what_is_already_there(fake_kaggle, tmp_path, monkeypatch):
    """A resumed download needs only what is missing: the zip's rest and the files not yet
    extracted."""
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    raw = tmp_path / "raw"
    (raw / "train_images").mkdir(parents=True)
    (raw / "train_images" / "a.dcm").write_bytes(b"x" * 9_000)  # 9 of the 10 kB of files
    (raw / f"{COMPETITION}.zip").write_bytes(b"PK" + b"x" * 5_998)  # 6 of the 10 kB zip
    _disk_with_free(monkeypatch, diskspace.RESERVE_BYTES + 6_000)  # needs 4 + 1 kB
    download_rsna(raw, raw / ".done")
    assert ncalls(fake_kaggle) == 1


def test_extraction_checks_the_exact_need_first(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    _good_zip(raw / f"{COMPETITION}.zip")
    members = download.inspect_zip(raw / f"{COMPETITION}.zip")
    assert download.bytes_to_extract(members, raw) == len("site_id\n1\n") + 100
    _disk_with_free(monkeypatch, diskspace.RESERVE_BYTES + 50)
    with pytest.raises(FrugalmedError, match="extracting"):
        download_rsna(raw, raw / ".done")
    assert not (raw / "train.csv").exists() and (raw / f"{COMPETITION}.zip").exists()
