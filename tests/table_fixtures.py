"""A `kind: table` cohort mixing every kind of file a hospital folder may hold.

DICOM from pydicom-data (the test extra): CT, MR and CR, MONOCHROME1, JPEG 2000 (lossless and
lossy), JPEG lossless SV1, RLE, uncompressed, RGB and YBR colour, palette colour, multi-frame;
plus PNGs (8-bit grey and RGB, 16-bit grey and RGB), a 16-bit TIFF and a JPEG written here; and
the bad rows: a missing file, a corrupt file, a label that is neither value, a repeated file.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: pydicom-data file -> what it exercises
DICOM_FILES = {
    "CT_small.dcm": "CT, uncompressed, signed 16 bit",
    "693_J2KR.dcm": "CT, JPEG 2000 lossless",
    "MR_small.dcm": "MR, uncompressed",
    "MR_small_RLE.dcm": "MR, RLE lossless",
    "RG3_J2KI.dcm": "CR, MONOCHROME1, JPEG 2000 lossy (1760 x 1760)",
    "JPGLosslessP14SV1_1s_1f_8b.dcm": "US, JPEG lossless SV1",
    "bad_sequence.dcm": "CT, JPEG lossless SV1",
    "SC_rgb.dcm": "RGB, uncompressed",
    "SC_rgb_rle.dcm": "RGB, RLE",
    "US1_J2KR.dcm": "YBR_RCT colour, JPEG 2000 lossless",
    "OBXXXX1A.dcm": "PALETTE COLOR",
    "emri_small.dcm": "MR, 10 frames",
}
COPIES = 3  # each file under three patients, so every split holds several samples


@dataclass
class TableCohort:
    raw_dir: Path
    labels: Path
    table: pd.DataFrame
    bad: dict[str, str]  # file -> reason expected in rejects.csv (frame: reject)


def _rgb_png16(path: Path, array: np.ndarray) -> None:
    import png  # pypng: Pillow cannot write 16-bit colour PNGs

    h, w, _ = array.shape
    png.Writer(w, h, greyscale=False, bitdepth=16).write(path.open("wb"), array.reshape(h, w * 3))


def write_rasters(folder: Path) -> dict[str, str]:
    """PNG/TIFF/JPEG files of a bright disc on a dark ramp; file -> what it exercises."""
    from PIL import Image
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:48, :40]
    base = 0.2 * xx / 40 + 0.7 * (((yy - 24) ** 2 + (xx - 20) ** 2) < 100)
    Image.fromarray((base * 255).astype(np.uint8)).save(folder / "grey8.png")
    rgb = np.stack([base, base * 0.5, base * 0.8], axis=-1)
    Image.fromarray((rgb * 255).astype(np.uint8)).save(folder / "rgb8.png")
    Image.fromarray((base * 4095).astype(np.uint16)).save(folder / "grey16.png")  # 12 bits in 16
    _rgb_png16(folder / "rgb16.png", (rgb * 65535).astype(np.uint16))
    tifffile.imwrite(folder / "grey16.tif", (base * 65535).astype(np.uint16))
    Image.fromarray((rgb * 255).astype(np.uint8)).save(folder / "photo.jpg", quality=95)
    return {"grey8.png": "PNG 8-bit grey", "rgb8.png": "PNG 8-bit RGB",
            "grey16.png": "PNG 16-bit grey (12 bits used)", "rgb16.png": "PNG 16-bit RGB",
            "grey16.tif": "TIFF 16-bit grey", "photo.jpg": "JPEG RGB"}


def build_table_cohort(root: Path, with_split: bool = False) -> TableCohort:
    """raw_dir + labels.csv (+ an optional given split column); see the module docstring."""
    from pydicom.data import get_testdata_file

    raw = root / "raw"
    sources = {}
    for name in DICOM_FILES:
        sources[f"dicom/{name}"] = Path(get_testdata_file(name))
    rasters = write_rasters(root / "rasters")
    for name in rasters:
        sources[f"images/{name}"] = root / "rasters" / name
    rows = []
    for copy in range(COPIES):
        for i, (rel, src) in enumerate(sorted(sources.items())):
            target = raw / f"site{copy}" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, target)
            n = len(rows)
            rows.append({"file": f"site{copy}/{rel}", "patient_id": f"P{i:02d}-{copy}",
                         "label": str(n % 2), "site_id": f"site{copy}", "age": str(40 + n)})
    bad_dir = raw / "bad"
    bad_dir.mkdir(parents=True)
    mr = Path(get_testdata_file("MR_small.dcm")).read_bytes()
    (bad_dir / "corrupt.dcm").write_bytes(mr[: len(mr) - 3000])  # cut inside the pixel data
    good_png = (root / "rasters" / "grey8.png").read_bytes()
    (bad_dir / "cut.png").write_bytes(good_png[: len(good_png) // 2])
    (bad_dir / "notes.txt").write_text("not an image\n")
    rows += [
        {"file": "bad/missing.png", "patient_id": "B1", "label": "1", "site_id": "site0", "age": "50"},
        {"file": "bad/corrupt.dcm", "patient_id": "B2", "label": "0", "site_id": "site0", "age": "51"},
        {"file": "bad/cut.png", "patient_id": "B3", "label": "1", "site_id": "site1", "age": "52"},
        {"file": "bad/notes.txt", "patient_id": "B4", "label": "0", "site_id": "site1", "age": "53"},
        {"file": "site0/images/grey8.png", "patient_id": "B5", "label": "7", "site_id": "site0",
         "age": "54"},  # bad label (the file itself is fine)
        {"file": "site1/images/rgb8.png", "patient_id": "P99", "label": "1", "site_id": "site1",
         "age": "55"},  # the same file as another row, with another patient and label
    ]
    table = pd.DataFrame(rows)
    if with_split:
        patients = sorted(set(table["patient_id"]))
        split_of = {p: ("train", "train", "val", "test")[i % 4] for i, p in enumerate(patients)}
        table["split"] = table["patient_id"].map(split_of)
    labels = raw / "labels.csv"
    table.to_csv(labels, index=False)
    bad = {
        "bad/missing.png": "file missing",
        "bad/corrupt.dcm": "pixel data could not be decoded",
        "bad/cut.png": "unreadable image file",
        "bad/notes.txt": "not an image file",
        "site0/images/grey8.png#B5": "label is neither the positive nor the negative value",
        "site1/images/rgb8.png": "duplicate file with conflicting rows",
    }
    for copy in range(COPIES):
        bad[f"site{copy}/dicom/emri_small.dcm"] = "multi-frame image"
    return TableCohort(raw, labels, table, bad)
