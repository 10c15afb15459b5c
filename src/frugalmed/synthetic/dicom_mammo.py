"""Write one digital-mammography DICOM file the way RSNA's sources store them.

RSNA's Kaggle DICOMs are "Digital Mammography X-Ray Image - For Presentation" objects in two
lossless transfer syntaxes: JPEG 2000 (encoded here by pydicom + pylibjpeg-openjpeg) and JPEG
Lossless SV1 (pydicom cannot encode it; GDCM can).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    generate_uid,
)

MG_FOR_PRESENTATION = UID("1.2.840.10008.5.1.4.1.1.1.2")
TRANSFER_SYNTAXES = (JPEG2000Lossless, JPEGLosslessSV1, ExplicitVRLittleEndian)


@dataclass
class MammoHeader:
    """The attributes of one image that vary between files (everything else is fixed)."""

    patient_id: str
    image_id: str
    study_uid: str
    laterality: str  # "L" | "R"
    view: str  # "CC" | "MLO" | ...
    age: float | None
    bits_stored: int
    photometric: str  # "MONOCHROME1" | "MONOCHROME2"
    windows: list[tuple[float, float]] = field(default_factory=list)  # (center, width)
    voi_function: str | None = None  # "LINEAR" | "SIGMOID" | None
    rescale: bool = False  # write an identity RescaleSlope/Intercept (modality LUT)
    manufacturer: str = "frugalmed synthetic"
    machine_id: str = "0"


def build_dataset(header: MammoHeader, pixels: np.ndarray, seed: int) -> Dataset:
    """An uncompressed MG For Presentation dataset holding `pixels` (uint16 stored values)."""
    if pixels.dtype != np.uint16 or pixels.ndim != 2:
        raise ValueError("pixels must be a 2-D uint16 array of stored values")
    if int(pixels.max()) >= 2**header.bits_stored:
        raise ValueError(f"pixel values exceed BitsStored={header.bits_stored}")
    sop_uid = generate_uid(entropy_srcs=["frugalmed-rsna", str(seed), header.image_id])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MG_FOR_PRESENTATION
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MG_FOR_PRESENTATION
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = header.study_uid
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["series", str(seed), header.image_id])
    ds.Modality = "MG"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.Manufacturer = header.manufacturer
    ds.StationName = f"machine{header.machine_id}"
    ds.PatientID = header.patient_id
    ds.PatientName = f"SYNTH^{header.patient_id}"
    ds.PatientSex = "F"
    if header.age is not None:
        ds.PatientAge = f"{int(header.age):03d}Y"
    ds.BodyPartExamined = "BREAST"
    ds.ImageLaterality = header.laterality
    ds.Laterality = header.laterality
    ds.ViewPosition = header.view
    ds.InstanceNumber = 1
    ds.SeriesNumber = 1
    ds.PixelSpacing = [0.5, 0.5]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = header.photometric
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = header.bits_stored
    ds.HighBit = header.bits_stored - 1
    ds.PixelRepresentation = 0
    if header.rescale:
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.RescaleType = "US"
    if header.windows:
        centers = [round(c, 1) for c, _ in header.windows]
        widths = [round(w, 1) for _, w in header.windows]
        ds.WindowCenter = centers if len(centers) > 1 else centers[0]
        ds.WindowWidth = widths if len(widths) > 1 else widths[0]
        explain = ["STANDARD", "HARDER", "SOFTER"][: len(centers)]
        ds.WindowCenterWidthExplanation = explain if len(explain) > 1 else explain[0]
        if header.voi_function:
            ds.VOILUTFunction = header.voi_function
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def write_mammogram(path: str | os.PathLike[str], ds: Dataset, transfer_syntax: UID) -> None:
    """Write `ds` to `path` in `transfer_syntax`, atomically (temp file beside it, then rename)."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if transfer_syntax == JPEG2000Lossless:
            ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg", generate_instance_uid=False)
            ds.save_as(tmp, enforce_file_format=True)
        elif transfer_syntax == JPEGLosslessSV1:
            ds.save_as(tmp, enforce_file_format=True)
            _gdcm_transcode(tmp, JPEGLosslessSV1)
        elif transfer_syntax == ExplicitVRLittleEndian:
            ds.save_as(tmp, enforce_file_format=True)
        else:
            raise ValueError(f"cannot write transfer syntax {transfer_syntax}")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cohort is ordinary readable data
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def _gdcm_transcode(path: Path, transfer_syntax: UID) -> None:
    """Re-encode the DICOM file at `path` in place with GDCM (JPEG Lossless SV1)."""
    import gdcm  # python-gdcm; imported here so the module loads without it

    if transfer_syntax != JPEGLosslessSV1:
        raise ValueError(f"GDCM transcoding is only used for JPEG Lossless SV1, not {transfer_syntax}")
    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    if not reader.Read():
        raise RuntimeError(f"GDCM could not read {path}")
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLosslessProcess14_1))
    change.SetInput(reader.GetImage())
    if not change.Change():
        raise RuntimeError(f"GDCM could not encode {path} as JPEG Lossless SV1")
    out = path.with_name(path.name + ".jpll")
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(out))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    try:
        if not writer.Write():
            raise RuntimeError(f"GDCM could not write {out}")
        os.replace(out, path)
    finally:
        out.unlink(missing_ok=True)
