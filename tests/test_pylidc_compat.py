"""pylidc 0.2.3 on numpy 2, pointed at raw_dir, never touching ~/.pylidcrc."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from frugalmed.pylidc_compat import import_pylidc
from lidc_fixtures import *  # noqa: F401,F403
from lidc_fixtures import SMALL_PATIENT

DECOY = "[dicom]\npath = /nonexistent/elsewhere\n"


def test_masks_work_on_numpy2_without_touching_numpy() -> None:
    pl = import_pylidc(None)
    ann = pl.query(pl.Annotation).first()
    mask = ann.boolean_mask()  # uses np.bool / np.int inside pylidc
    assert mask.dtype == bool and mask.any()
    assert ann.contours[0].to_matrix().dtype.kind == "i"
    with pytest.raises(AttributeError):
        np.int  # noqa: B018 - numpy itself keeps its numpy-2 namespace


@pytest.mark.slow  # a fresh Python process importing pylidc: seconds
def test_pylidcrc_never_read_or_written(lidc_cohort: Path, tmp_path: Path) -> None:
    """A fresh process, HOME in tmp: without raw_dir pylidc fails clearly (and writes no
    template ~/.pylidcrc, as pylidc itself would); with raw_dir a decoy ~/.pylidcrc pointing
    elsewhere is ignored and left byte-identical, and none is created where there was none."""
    empty_home, decoy_home = tmp_path / "empty", tmp_path / "decoy"
    empty_home.mkdir()
    decoy_home.mkdir()
    rc = decoy_home / ".pylidcrc"
    rc.write_text(DECOY)
    os.utime(rc, (1_000_000_000, 1_000_000_000))
    script = textwrap.dedent(
        f"""
        import os
        from frugalmed.errors import FrugalmedError
        from frugalmed.pylidc_compat import import_pylidc, set_dicom_root
        pl = import_pylidc(None)
        scan = pl.query(pl.Scan).filter(pl.Scan.patient_id == {SMALL_PATIENT!r}).first()
        try:
            scan.get_path_to_dicom_files()
        except FrugalmedError as err:
            print("CLEAR:", err)
        set_dicom_root({str(lidc_cohort)!r})
        for home in ({str(empty_home)!r}, {str(decoy_home)!r}):
            os.environ["HOME"] = home
            path = scan.get_path_to_dicom_files()
            assert path.startswith({str(lidc_cohort)!r}), path
            assert len(scan.load_all_dicom_images(verbose=False)) == len(scan.slice_zvals)
            print("OK", home)
        """
    )
    env = {**os.environ, "HOME": str(empty_home), "USERPROFILE": str(empty_home)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "CLEAR:" in done.stdout and "import_pylidc(raw_dir)" in done.stdout
    assert done.stdout.count("OK") == 2
    assert rc.read_text() == DECOY and rc.stat().st_mtime == 1_000_000_000
    for home, expected in ((empty_home, []), (decoy_home, [".pylidcrc"])):
        # (matplotlib may put its caches into HOME; only pylidc files matter here)
        assert sorted(p.name for p in home.rglob("*") if "pylidc" in p.name) == expected
