"""Download RSNA Screening Mammography from Kaggle with the official `kaggle` CLI, resumably.

`kaggle competitions download -c rsna-breast-cancer-detection -p raw_dir` fetches one ~314 GB
zip. The zip is kept until every member is extracted (members already extracted with the right
size are skipped on a re-run), a stamp then records the extraction, the zip is deleted, and the
raw-complete marker is written last. A killed run therefore resumes where it stopped.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Mapping

from frugalmed.atomic import write_text
from frugalmed.errors import FrugalmedError

log = logging.getLogger(__name__)

COMPETITION = "rsna-breast-cancer-detection"
UNZIPPED_STAMP = ".frugalmed_unzipped"


def rules_url(competition: str = COMPETITION) -> str:
    return f"https://www.kaggle.com/competitions/{competition}/rules"


def find_credentials(env: Mapping[str, str] | None = None, home: Path | None = None) -> str | None:
    """Where Kaggle credentials were found (for the log), or None if nowhere."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    if env.get("KAGGLE_API_TOKEN"):
        return "environment variable KAGGLE_API_TOKEN"
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return "environment variables KAGGLE_USERNAME / KAGGLE_KEY"
    config_dir = Path(env["KAGGLE_CONFIG_DIR"]) if env.get("KAGGLE_CONFIG_DIR") else home / ".kaggle"
    for name in ("kaggle.json", "access_token"):
        if (config_dir / name).is_file():
            return str(config_dir / name)
    return None


def missing_credentials_message(competition: str = COMPETITION) -> str:
    return (
        "No Kaggle credentials found (checked KAGGLE_API_TOKEN, KAGGLE_USERNAME + KAGGLE_KEY, "
        "~/.kaggle/kaggle.json, ~/.kaggle/access_token). To download RSNA: create an API token "
        "at https://www.kaggle.com/settings (API -> Create New Token) and either export "
        "KAGGLE_API_TOKEN=<token> or save kaggle.json to ~/.kaggle/kaggle.json (chmod 600); "
        f"accept the competition rules at {rules_url(competition)}. Alternatively set "
        "datasets.rsna.source: local with raw_dir holding the files, or source: synthetic."
    )


def run_kaggle(raw_dir: Path, competition: str, kaggle: str) -> None:
    """Run the Kaggle CLI download, streaming its output to the log; explain failures."""
    exe = shutil.which(kaggle)
    if exe is None:
        raise FrugalmedError(f"the Kaggle CLI '{kaggle}' is not on PATH: pip install kaggle")
    command = [exe, "competitions", "download", "-c", competition, "-p", str(raw_dir)]
    log.info("running: %s", " ".join(command))
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        log.info("kaggle: %s", line.rstrip())
        tail = (tail + [line.rstrip()])[-40:]
    code = proc.wait()
    output = "\n".join(tail)
    if "403" in output or "Forbidden" in output:
        raise FrugalmedError(
            f"Kaggle refused the download (403 Forbidden): accept the competition rules at "
            f"{rules_url(competition)} with the account of your credentials, then re-run."
        )
    if "401" in output or "Unauthorized" in output:
        raise FrugalmedError(
            "Kaggle rejected the credentials (401 Unauthorized): create a new API token at "
            "https://www.kaggle.com/settings and update KAGGLE_API_TOKEN or ~/.kaggle/kaggle.json."
        )
    if code != 0:
        raise FrugalmedError(f"'kaggle competitions download' failed (exit {code}):\n{output}")


def extract(zip_path: Path, raw_dir: Path) -> int:
    """Extract every member not yet extracted (atomically per file); returns how many were new."""
    root = raw_dir.resolve()
    new = 0
    with zipfile.ZipFile(zip_path) as archive:
        for member in archive.infolist():
            target = (raw_dir / member.filename).resolve()
            if root not in target.parents and target != root:
                raise FrugalmedError(f"{zip_path}: member {member.filename!r} would land outside {raw_dir}")
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if target.is_file() and target.stat().st_size == member.file_size:
                continue  # extracted by an earlier, interrupted run
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            with archive.open(member) as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
            os.replace(partial, target)
            new += 1
    return new


def download_rsna(
    raw_dir: str | os.PathLike[str],
    marker: str | os.PathLike[str],
    competition: str = COMPETITION,
    kaggle: str = "kaggle",
) -> None:
    """Download and extract the competition into raw_dir (Kaggle layout); the marker last."""
    raw = Path(raw_dir)
    raw.mkdir(parents=True, exist_ok=True)
    Path(marker).unlink(missing_ok=True)
    zip_path = raw / f"{competition}.zip"
    stamp = raw / UNZIPPED_STAMP
    if not stamp.exists():
        if not (zip_path.is_file() and zipfile.is_zipfile(zip_path)):
            where = find_credentials()
            if where is None:
                raise FrugalmedError(missing_credentials_message(competition))
            log.info("Kaggle credentials: %s", where)
            run_kaggle(raw, competition, kaggle)
            if not (zip_path.is_file() and zipfile.is_zipfile(zip_path)):
                raise FrugalmedError(
                    f"the Kaggle CLI finished but {zip_path} is missing or not a complete zip; "
                    "re-run to resume the download"
                )
        else:
            log.info("%s is complete; skipping the download", zip_path)
        log.info("extracted %d new files from %s", extract(zip_path, raw), zip_path)
        write_text(stamp, f"{zip_path.name} fully extracted\n")
        zip_path.unlink()
    if not (raw / "train.csv").is_file() or not (raw / "train_images").is_dir():
        raise FrugalmedError(f"{raw} lacks train.csv or train_images/ after extraction")
    write_text(marker, f"Kaggle {competition} downloaded and extracted\n")
