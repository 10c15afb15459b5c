"""Run pylidc 0.2.3 on numpy 2, pointed at a chosen DICOM folder, without ~/.pylidcrc.

pylidc 0.2.3 (the last release) still calls ``np.int`` / ``np.float`` (removed in numpy 1.24)
inside Annotation.boolean_mask, Contour.to_matrix and friends, and it finds the DICOM files
through ``~/.pylidcrc`` -- which it even *writes* when the file is missing. A workflow must
neither depend on nor modify a user's home directory, so this module:

* gives pylidc's own modules a numpy namespace that still has those aliases (numpy itself
  is left untouched, so no other library sees the old names);
* replaces pylidc's config-file lookup by the folder passed to :func:`import_pylidc`.

Always get pylidc through ``import_pylidc(raw_dir)``, never ``import pylidc`` directly.
"""

from __future__ import annotations

import os
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from frugalmed.errors import FrugalmedError

# Aliases numpy removed in 1.24 / 2.0 that pylidc 0.2.3 still uses.
_REMOVED_ALIASES: dict[str, Any] = {
    "int": int,
    "float": float,
    "bool": bool,
    "object": object,
    "complex": complex,
    "str": str,
}
_PYLIDC_MODULES = (
    "pylidc.Scan",
    "pylidc.Annotation",
    "pylidc.Contour",
    "pylidc.Zval",
    "pylidc.utils",
    "pylidc.annotation_distance_metrics",
)

_dicom_root: Path | None = None


class _NumpyWithAliases(types.ModuleType):
    """numpy as pylidc expects it: every numpy attribute, plus the removed builtin aliases."""

    def __init__(self) -> None:
        super().__init__("numpy")

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(np, name)
        except AttributeError:
            if name in _REMOVED_ALIASES:
                return _REMOVED_ALIASES[name]
            raise


_NUMPY = _NumpyWithAliases()


def _dicom_root_or_fail() -> str:
    """Replacement for pylidc.Scan._get_dicom_file_path_from_config_file (reads no file)."""
    if _dicom_root is None:
        raise FrugalmedError(
            "pylidc has no DICOM folder: call frugalmed.pylidc_compat.import_pylidc(raw_dir) "
            "before loading images"
        )
    return str(_dicom_root)


def _config_file_description() -> str:
    """What pylidc's error messages name instead of ~/.pylidcrc."""
    return f"frugalmed datasets.lidc.raw_dir (= {_dicom_root})"


def set_dicom_root(raw_dir: str | os.PathLike[str]) -> None:
    """Point pylidc at `raw_dir` ({PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/*.dcm)."""
    global _dicom_root
    _dicom_root = Path(raw_dir).resolve()


def reopen_database() -> None:
    """Give this process its own connection to pylidc's SQLite database.

    A forked worker must not reuse the parent's connection; pylidc.query() reads the module's
    session at call time, so swapping it here is enough.
    """
    pylidc = import_pylidc()
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    pylidc._engine = create_engine("sqlite:///" + pylidc._dbpath)
    pylidc._session = sessionmaker(bind=pylidc._engine)()


def import_pylidc(raw_dir: str | os.PathLike[str] | None = None) -> types.ModuleType:
    """Import pylidc, patched for numpy 2 and pointed at `raw_dir`; return the module.

    `raw_dir` may be None for work that needs only the annotation database (no images).
    """
    with warnings.catch_warnings():
        # pylidc imports pkg_resources (deprecated) and scipy.ndimage.morphology (deprecated).
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        import pylidc

    for name in _PYLIDC_MODULES:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "np", None) is not _NUMPY:
            module.np = _NUMPY
    scan_module = sys.modules["pylidc.Scan"]
    scan_module._get_dicom_file_path_from_config_file = _dicom_root_or_fail
    scan_module._get_config_file = _config_file_description
    if raw_dir is not None:
        set_dicom_root(raw_dir)
    return pylidc
