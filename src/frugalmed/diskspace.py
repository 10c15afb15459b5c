"""Free-disk checks before long downloads: fail in seconds, not after hours, when data cannot fit.

A download that runs out of disk after a day leaves a truncated file and a confusing error from
deep inside a client library. Each download therefore states what it needs before it starts
(and again before each series or batch, in case something else filled the disk meanwhile).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from frugalmed.errors import FrugalmedError

log = logging.getLogger(__name__)

# Kept free beyond a download's own need: logs, temporary files, and headroom so that the file
# system does not run completely full.
RESERVE_BYTES = 2 * 10**9


def gb(n_bytes: float) -> str:
    """Bytes as decimal gigabytes, the unit disks and dataset pages are sold in."""
    return f"{n_bytes / 1e9:,.1f} GB"


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Free bytes on the file system that holds `path` (or would: its nearest existing parent)."""
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def require_free_space(
    path: str | os.PathLike[str], need_bytes: float, what: str, key: str
) -> None:
    """Raise FrugalmedError unless `need_bytes` + RESERVE_BYTES are free where `path` lives.

    `what` says what the bytes are for (shown to the user, estimates marked as such); `key` is
    the config key that chose the location, so the message says what to change.
    """
    free = free_bytes(path)
    if need_bytes + RESERVE_BYTES > free:
        raise FrugalmedError(
            f"not enough disk for {what}: it needs {gb(need_bytes)} (+ {gb(RESERVE_BYTES)} kept "
            f"free) under {path}, but that file system has {gb(free)} free. Free space there, "
            f"or point {key} at a larger disk."
        )
    log.info("disk: %s needs %s under %s; %s free", what, gb(need_bytes), path, gb(free))


def tree_bytes(root: str | os.PathLike[str], skip: tuple[str, ...] = ()) -> int:
    """Total size of the regular files under root (names in `skip` at the top level left out)."""
    total = 0
    root = Path(root)
    if not root.is_dir():
        return 0
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root:
            dirnames[:] = [d for d in dirnames if d not in skip]
            filenames = [f for f in filenames if f not in skip]
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass  # vanished meanwhile
    return total
