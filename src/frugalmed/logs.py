"""Logging set-up shared by every workflow script: one call sends a job's story to its rule's log."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from types import TracebackType

#: One line per record: when, how bad, which module, what.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to(path: str | os.PathLike[str]) -> None:
    """Make the rule's log file (Snakemake's `log:`) the place to look when a job misbehaves.

    It gets our own records (INFO and up), the warnings libraries raise through `warnings`
    (`logging.captureWarnings`), and any uncaught exception with its traceback, which still goes
    to stderr as usual, so scripts need no try/except-log-reraise wrapper. `force=True` replaces
    handlers an import may already have installed; the log's folder is created if missing.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=str(path), level=logging.INFO, format=LOG_FORMAT, force=True)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], value: BaseException,
                  tb: TracebackType | None) -> None:
    """Record the error that ends the script in the log, then report it on stderr as Python would."""
    logging.getLogger("frugalmed").critical("uncaught %s: %s", kind.__name__, value,
                                            exc_info=(kind, value, tb))
    sys.__excepthook__(kind, value, tb)
