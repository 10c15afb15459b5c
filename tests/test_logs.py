"""frugalmed.logs.log_to: a rule's log file holds our records, library warnings and the fatal traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from frugalmed.logs import log_to


def run_script(body: str, log: Path) -> subprocess.CompletedProcess[str]:
    """Run `body` as a fresh Python process after log_to(log), as a Snakemake script would."""
    code = f"from frugalmed.logs import log_to\nlog_to({str(log)!r})\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_uncaught_exception_lands_in_the_log_and_on_stderr(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "deep" / "rule.log"  # the folder does not exist yet
    proc = run_script("""
        import logging
        logging.getLogger("frugalmed.demo").info("started the job")
        def inner():
            raise ValueError("manifest.csv lacks column 'split'")
        inner()
    """, log)
    assert proc.returncode == 1
    text = log.read_text()
    assert "INFO frugalmed.demo: started the job" in text
    assert "Traceback (most recent call last)" in text
    assert "in inner" in text
    assert "ValueError: manifest.csv lacks column 'split'" in text
    # stderr still reports the error as Python normally would
    assert "ValueError: manifest.csv lacks column 'split'" in proc.stderr


def test_library_warnings_land_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "rule.log"
    proc = run_script("""
        import warnings
        warnings.warn("pixel spacing missing, assuming 1 mm", UserWarning)
    """, log)
    assert proc.returncode == 0, proc.stderr
    text = log.read_text()
    assert "WARNING py.warnings" in text
    assert "UserWarning: pixel spacing missing, assuming 1 mm" in text
    assert "Traceback" not in text


def test_a_clean_run_logs_no_error(tmp_path: Path) -> None:
    log = tmp_path / "rule.log"
    proc = run_script('import logging; logging.getLogger("x").debug("too chatty")', log)
    assert proc.returncode == 0, proc.stderr
    assert log.read_text() == ""  # DEBUG is below the INFO threshold; nothing else was said


@pytest.fixture
def restore_logging():
    """log_to rewires the root logger and sys.excepthook; put them back for the other tests."""
    import logging

    root = logging.getLogger()
    handlers, level, hook = root.handlers[:], root.level, sys.excepthook
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:], sys.excepthook = handlers, hook
    root.setLevel(level)
    logging.captureWarnings(False)


def test_log_to_replaces_handlers_installed_earlier(tmp_path: Path, restore_logging) -> None:
    import logging

    first, second = tmp_path / "first.log", tmp_path / "second.log"
    log_to(first)
    log_to(second)  # force=True: a second call (or an import's basicConfig) must not win
    logging.getLogger("frugalmed.demo").warning("where am I")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "where am I" in second.read_text()
    assert "where am I" not in first.read_text()
