"""Reduced-resolution JPEG 2000 decoding (frugalmed.rsna.j2k): it runs with nothing but the Python
packages (no system libopenjp2), its pixels are OpenJPEG's whichever binding calls it (Pillow,
glymur), Pillow's size rounding for odd sides is worked around exactly, and every failure falls
back to full decoding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames
from pydicom.uid import JPEG2000Lossless

from frugalmed.rsna import decode, j2k
from frugalmed.rsna.decode import decode_mammogram
from frugalmed.synthetic.dicom_mammo import MammoHeader, build_dataset, write_mammogram
from rsna_fixtures import rsna_cohort  # noqa: F401

warnings.filterwarnings("ignore", category=UserWarning, module="pydicom")
REPO = Path(__file__).resolve().parents[1]
# lossless (5/3) and lossy (9/7), odd sides (RG1: 1955 x 1841), signed 16-bit (MR_small, 693)
FILES = ["RG1_J2KR.dcm", "RG3_J2KR.dcm", "MR2_J2KR.dcm", "RG1_J2KI.dcm", "MR_small_jp2klossless.dcm",
         "693_J2KR.dcm", "JPEG2000.dcm"]

needs_pillow_j2k = pytest.mark.skipif(not j2k.pillow_available(), reason="Pillow without OpenJPEG")


def data_file(name: str) -> str:
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} not available (pip install pydicom-data)")
    return str(path)


def codestream(path: str) -> bytes:
    ds = pydicom.dcmread(path)
    return next(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))


def synthetic_j2k(tmp_path: Path, rows: int = 523, cols: int = 417, name: str = "mammo") -> str:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_cohort import mammogram_like

    stored = mammogram_like(rows, cols, 12, "L", np.random.default_rng(1))
    header = MammoHeader("1", name, "1.2.3", "L", "CC", 50.0, 12, "MONOCHROME2",
                         windows=[(2000.0, 3000.0)], voi_function="LINEAR")
    path = tmp_path / f"{name}.dcm"
    write_mammogram(path, build_dataset(header, stored, 0), JPEG2000Lossless)
    return str(path)


def test_codestream_header_is_read():
    header = j2k.read_header(codestream(data_file("RG1_J2KR.dcm")))
    assert header == j2k.CodestreamHeader(rows=1955, cols=1841, components=1, precision=15,
                                          signed=False, levels=5, origin=(0, 0))
    signed = j2k.read_header(codestream(data_file("MR_small_jp2klossless.dcm")))
    assert (signed.rows, signed.cols, signed.precision, signed.signed) == (64, 64, 16, True)
    assert j2k.read_header(b"\xff\xd8\xff\xe0 not JPEG 2000") is None
    assert j2k.read_header(codestream(data_file("RG1_J2KR.dcm"))[:30]) is None  # cut in SIZ


def test_reduced_shape_is_openjpegs_ceil():
    header = j2k.CodestreamHeader(1955, 1841, 1, 15, False, 5, (0, 0))
    assert j2k.reduced_shape(header, 0) == (1955, 1841)
    assert j2k.reduced_shape(header, 2) == (489, 461)  # Pillow would say 460 columns
    assert j2k.reduced_shape(header, 3) == (245, 231)


@needs_pillow_j2k
def test_pillow_alone_fails_on_odd_sides_and_the_workaround_decodes_them():
    """The bug worked around: Pillow sizes 1841 / 4 as 460, OpenJPEG decodes 461 columns."""
    import io

    from PIL import Image

    stream = codestream(data_file("RG1_J2KR.dcm"))
    plain = Image.open(io.BytesIO(stream))
    plain.reduce = 2
    try:
        plain.load()
        fixed_upstream = True
    except OSError:
        fixed_upstream = False
    pixels = j2k.decode_pillow(stream, j2k.read_header(stream), 2)
    assert pixels.shape == (489, 461)
    if fixed_upstream:  # a later Pillow may size it right itself: then both must agree
        np.testing.assert_array_equal(np.asarray(plain) >> 1, pixels)


@needs_pillow_j2k
@pytest.mark.parametrize("name", FILES)
def test_pillow_full_resolution_equals_pydicom(name):
    """r = 0 checks the undoing of Pillow's scaling and signed offset against pydicom's decode."""
    path = data_file(name)
    ds = pydicom.dcmread(path)
    stream = codestream(path)
    header = j2k.read_header(stream)
    expected = ds.pixel_array if int(ds.get("NumberOfFrames", 1) or 1) == 1 else ds.pixel_array[0]
    if header.precision != ds.BitsStored:  # pydicom rescales such files; frugalmed leaves them to it
        expected = expected.astype(np.int64)
    np.testing.assert_array_equal(j2k.decode_pillow(stream, header, 0), expected)


def _pillow_openjpeg_path() -> str:
    """The libopenjp2 Pillow loaded (a decode maps it into this process)."""
    j2k.decode_pillow(codestream(data_file("MR2_J2KR.dcm")), j2k.read_header(codestream(data_file("MR2_J2KR.dcm"))), 1)
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "/libopenjp2" in line}
    except OSError:
        pytest.skip("no /proc/self/maps")
    if len(paths) != 1:
        pytest.skip(f"cannot tell which libopenjp2 Pillow uses: {paths}")
    return paths.pop()


GLYMUR_DECODES = """
import json, sys
import numpy as np, pydicom
from pydicom.encaps import generate_frames
import glymur
from frugalmed.rsna import j2k
out = {"openjpeg": glymur.version.openjpeg_version, "library": glymur.lib.openjp2.OPENJP2._name, "files": {}}
for path in sys.argv[1:]:
    ds = pydicom.dcmread(path)
    stream = next(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))
    header = j2k.read_header(stream)
    same = []
    for r in range(0, min(header.levels, 4) + 1):
        a, b = j2k.decode_pillow(stream, header, r), j2k.decode_glymur(stream, r)
        same.append(bool(a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)))
    out["files"][path] = same
print(json.dumps(out))
"""


@pytest.mark.slow  # a fresh Python process importing the decoders: seconds
@needs_pillow_j2k
def test_pillow_and_glymur_decode_identical_pixels(tmp_path):
    """Every level of every file, odd sides included: the two bindings' code (Pillow's tile-wise
    decoder with frugalmed's size fix and unscaling, glymur's whole-image decode) on the same
    OpenJPEG, Pillow's own copy, named in a glymurrc (which glymur prefers to a system
    libopenjp2), so this runs everywhere and compares bindings, not OpenJPEG versions."""
    paths = [data_file(n) for n in FILES] + [synthetic_j2k(tmp_path, 517, 409)]
    cwd = tmp_path / "run"
    cwd.mkdir()
    (cwd / "glymurrc").write_text(f"[library]\nopenjp2: {_pillow_openjpeg_path()}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", GLYMUR_DECODES, *paths], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["openjpeg"] not in ("0.0.0", "") and result["library"] == _pillow_openjpeg_path()
    for path, same in result["files"].items():
        assert len(same) >= 4 and all(same), f"{path}: identical per level {same}"


NO_SYSTEM_LIBOPENJP2 = """
import ctypes.util, json, sys
_find = ctypes.util.find_library
def find_library(name):  # as on a machine without libopenjp2-7 (glymur looks it up this way)
    return None if "openjp" in name.lower() else _find(name)
ctypes.util.find_library = find_library
import glymur
import numpy as np
from frugalmed.rsna.decode import decode_mammogram
from frugalmed.rsna.resize import standardise
out = {"glymur_openjpeg": glymur.version.openjpeg_version, "cases": []}
for arg in sys.argv[1:]:
    path, size = arg.rsplit(":", 1)
    reduced = decode_mammogram(path, int(size))
    full = decode_mammogram(path, int(size), reduce=False)
    a, b = standardise(reduced.image, int(size), [1])[1], standardise(full.image, int(size), [1])[1]
    out["cases"].append({"path": path, "reduced": reduced.reduced_decode, "decoder": reduced.decoder,
                         "reduction": reduced.reduction, "full_decoder": full.decoder,
                         "max_diff": int(np.abs(a.astype(int) - b).max())})
with open("/proc/self/maps") as fh:
    out["mapped"] = sorted({line.split()[-1] for line in fh if "/libopenjp2" in line})
print(json.dumps(out))
"""


@pytest.mark.slow  # a fresh Python process importing the decoders: seconds
@needs_pillow_j2k
def test_reduced_decoding_needs_no_system_libopenjp2(tmp_path):
    """What `pip install` alone gives: no libopenjp2 the loader or glymur could find (hidden
    here in a fresh process, with no glymurrc anywhere), yet JPEG 2000 is decoded at reduced
    resolution -- by the OpenJPEG inside the Pillow wheel, the only libopenjp2 the process maps,
    which must lie inside the Python environment -- and its images match full decoding within one grey level (OpenJPEG's integer 5/3
    lifting vs the exact linear low-pass of a full decode: every pixel of these images)."""
    if not Path("/proc/self/maps").exists():
        pytest.skip("needs /proc/self/maps to tell which library decoded")
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    # RG1 at 128 px: r = 3 on 1955 x 1841, sides Pillow alone sizes wrong
    cases = [f"{data_file('RG1_J2KR.dcm')}:128", f"{data_file('RG3_J2KR.dcm')}:128",
             f"{synthetic_j2k(tmp_path)}:64"]
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
               PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-c", NO_SYSTEM_LIBOPENJP2, *cases], cwd=home, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["glymur_openjpeg"] == "0.0.0", "glymur still found a libopenjp2"
    for case in result["cases"]:
        assert case["reduced"] and case["decoder"].startswith("pillow reduce="), case
        assert case["reduction"] >= 2 and case["full_decoder"].startswith("pydicom"), case
        assert case["max_diff"] <= 1, case
    import site

    # installed with the Python packages: in a wheel (site-packages) or the environment itself
    # (a conda env's lib/), never a system directory such as /usr/lib
    envs = [os.path.realpath(p) for p in [sys.prefix, *site.getsitepackages(), site.getusersitepackages()]]
    assert result["mapped"], "no libopenjp2 was loaded at all"
    for lib in result["mapped"]:
        assert any(os.path.realpath(lib).startswith(e + os.sep) for e in envs), (
            f"{lib} was not installed with the Python packages")


def test_without_any_openjpeg_binding_jpeg2000_falls_back_to_full_decoding(monkeypatch):
    path = data_file("RG3_J2KR.dcm")
    monkeypatch.setattr(j2k, "pillow_available", lambda: False)
    monkeypatch.setattr(j2k, "glymur_available", lambda: False)
    fallback = decode_mammogram(path, min_size=256, reduce=True)
    assert not fallback.reduced_decode and fallback.reduction >= 2
    assert fallback.decoder.startswith("pydicom")
    np.testing.assert_array_equal(fallback.image, decode_mammogram(path, 256, reduce=False).image)


@needs_pillow_j2k
def test_a_pillow_failure_falls_back(monkeypatch):
    """Pillow raising on a file: glymur when it has a library, else the full decode; never a reject."""
    path = data_file("RG1_J2KR.dcm")

    def broken(*args, **kwargs):
        raise OSError("broken data stream when reading image file")

    monkeypatch.setattr(j2k, "decode_pillow", broken)
    got = decode_mammogram(path, min_size=128)
    if j2k.glymur_available():
        assert got.reduced_decode and got.decoder.startswith("glymur")
    else:
        assert not got.reduced_decode and got.decoder.startswith("pydicom")
    assert got.image.shape == (245, 231)


def test_header_mismatch_is_left_to_pydicom():
    """Codestream signed, header unsigned: pydicom's corrections apply, no reduced decode."""
    decoded = decode_mammogram(data_file("J2K_pixelrep_mismatch.dcm"), min_size=64)
    assert not decoded.reduced_decode and decoded.decoder.startswith("pydicom")


@needs_pillow_j2k
def test_reduction_beyond_the_codestream_levels_continues_with_the_53_lowpass(tmp_path, monkeypatch):
    """A codestream with fewer wavelet levels than needed: OpenJPEG decodes what it has, the rest
    is reduced like a full decode, and the reported reduction is the one asked for."""
    path = data_file("MR2_J2KR.dcm")  # 1024 x 1024, 5 levels
    real = j2k.read_header

    def two_levels(stream):
        header = real(stream)
        return None if header is None else j2k.CodestreamHeader(**{**header.__dict__, "levels": 2})

    monkeypatch.setattr(j2k, "read_header", two_levels)
    got = decode_mammogram(path, min_size=64)  # r = 4
    assert got.reduction == 4 and got.reduced_decode and got.image.shape == (64, 64)
    assert got.decoder == "pillow reduce=2 + 5/3 x2"
    assert decode.reduction_level(1024, 1024, 64) == 4


@needs_pillow_j2k
def test_selection_counts_the_reduced_decodes(rsna_cohort, tmp_path):
    """The stage on the synthetic cohort: every JPEG 2000 image, and only those, decoded at
    reduced resolution, and selection.json says how many."""
    import pandas as pd

    from frugalmed.rsna.preprocess import ImageSpec, preprocess_rsna
    from rsna_fixtures import SPLITS, outputs_in

    out = outputs_in(tmp_path, (1, 2))
    manifest = preprocess_rsna(rsna_cohort, out, max_age=200, label="birads_followup",
                               spec=ImageSpec(image_size=32, scales=(1, 2)), splits=SPLITS,
                               max_reject_fraction=0.0, threads=1)  # 128 x 104 -> r = 1
    selection = json.loads(Path(out["selection"]).read_text())
    is_j2k = manifest["transfer_syntax"].isin([str(s) for s in decode.J2K_SYNTAXES])
    assert 0 < is_j2k.sum() < len(manifest)
    pd.testing.assert_series_equal(manifest["reduced_decode"].astype(bool), is_j2k, check_names=False)
    assert selection["reduced_resolution_decodes"] == int(is_j2k.sum())
