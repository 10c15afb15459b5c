"""Download RSNA Screening Mammography from Kaggle with the official `kaggle` CLI, resumably.

`kaggle competitions download -c rsna-breast-cancer-detection -p raw_dir` fetches one zip of
~314 GB. The zip is kept until every member is extracted (members already extracted with the
right size are skipped on a re-run), a stamp then records the extraction, the zip is deleted,
and the raw-complete marker is written last. A killed run therefore resumes where it stopped.

Integrity: a zip without its end-of-archive record (a truncated download) is downloaded again.
Before extraction the archive's directory is read, and every member must lie inside the file
with its local header where the directory says; during extraction zipfile checks each member's CRC-32 before the file is renamed into place. A
zip that fails either check is deleted and downloaded again (once per run).

Disk: the zip and the extracted files coexist until the extraction ends, so the download needs
about twice the data's size free (checked before the download, estimated, since Kaggle tells
the size only while downloading) and the extraction the exact size of what is left to extract
(read from the zip's directory).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import zipfile
import zlib
from pathlib import Path
from typing import Mapping

from frugalmed.atomic import write_text
from frugalmed.diskspace import gb, require_free_space, tree_bytes
from frugalmed.errors import FrugalmedError

log = logging.getLogger(__name__)

COMPETITION = "rsna-breast-cancer-detection"
UNZIPPED_STAMP = ".frugalmed_unzipped"
RAW_DIR_KEY = "datasets.rsna.raw_dir"
# Estimates, for the disk check before the download (Kaggle gives no size beforehand): the
# competition's files total about 314 GB (Kaggle's data page); they are DICOMs compressed
# with JPEG 2000 / JPEG lossless already, so the zip is taken to be as large as its content.
FILES_BYTES_ESTIMATE = 315e9
ZIP_BYTES_ESTIMATE = 315e9
LOCAL_HEADER_BYTES = 30  # fixed part of a zip member's local header
LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"


class CorruptZip(FrugalmedError):
    """The downloaded zip is damaged: delete it and download it again."""


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


def _kaggle_exe(kaggle: str) -> str:
    exe = shutil.which(kaggle)
    if exe is None:
        raise FrugalmedError(
            f"the Kaggle CLI '{kaggle}' is not on PATH: pip install kaggle (or the project's "
            "extra: pip install 'frugalmed[data]')"
        )
    return exe


def run_kaggle(raw_dir: Path, competition: str, kaggle: str, force: bool = False) -> None:
    """Run the Kaggle CLI download, streaming its output to the log; explain failures.

    force: pass --force, so the CLI replaces a file it would otherwise take for up to date.
    """
    command = [_kaggle_exe(kaggle), "competitions", "download", "-c", competition, "-p", str(raw_dir)]
    command += ["--force"] if force else []
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


def inspect_zip(zip_path: Path) -> list[zipfile.ZipInfo]:
    """The members of a downloaded zip, after the checks that need no decompression.

    Raises CorruptZip when the archive's directory is unreadable or a member would extend past
    the end of the file; FrugalmedError when it is a sound zip of something else.
    """
    size = zip_path.stat().st_size
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise CorruptZip(f"{zip_path}: unreadable zip directory ({err})") from err
    with open(zip_path, "rb") as raw:  # one short read per member: seconds for 54,000
        for member in members:
            end = member.header_offset + LOCAL_HEADER_BYTES + member.compress_size
            if member.header_offset < 0 or end > size:
                raise CorruptZip(
                    f"{zip_path}: member {member.filename!r} would span bytes "
                    f"{member.header_offset:,}..{end:,} of a {size:,}-byte file (bytes lost)"
                )
            raw.seek(member.header_offset)
            if raw.read(4) != LOCAL_HEADER_SIGNATURE:
                raise CorruptZip(
                    f"{zip_path}: no member header where the directory puts "
                    f"{member.filename!r} (byte {member.header_offset:,}): bytes lost or changed"
                )
    names = {m.filename for m in members}
    if "train.csv" not in names or not any(n.startswith("train_images/") for n in names):
        raise FrugalmedError(
            f"{zip_path} is a sound zip but holds no train.csv and train_images/: not the "
            f"{COMPETITION} files. Delete it and re-run."
        )
    return members


def _target(raw_dir: Path, member: zipfile.ZipInfo) -> Path:
    target = (raw_dir / member.filename).resolve()
    root = raw_dir.resolve()
    if root not in target.parents and target != root:
        raise FrugalmedError(f"zip member {member.filename!r} would land outside {raw_dir}")
    return target


def _extracted(target: Path, member: zipfile.ZipInfo) -> bool:
    """Whether an earlier (interrupted) run already put this member in place."""
    return target.is_file() and target.stat().st_size == member.file_size


def bytes_to_extract(members: list[zipfile.ZipInfo], raw_dir: Path) -> int:
    """Exact bytes the members not yet in place will take once extracted."""
    return sum(
        m.file_size for m in members if not m.is_dir() and not _extracted(_target(raw_dir, m), m)
    )


def extract(zip_path: Path, raw_dir: Path) -> int:
    """Extract every member not yet extracted (atomically per file); returns how many were new.

    Each member's CRC-32 is checked as it is read, before its file is renamed into place, so a
    file in place is whole; a damaged member raises CorruptZip.
    """
    new = 0
    with zipfile.ZipFile(zip_path) as archive:
        for member in archive.infolist():
            target = _target(raw_dir, member)
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if _extracted(target, member):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            try:
                with archive.open(member) as src, open(partial, "wb") as dst:
                    shutil.copyfileobj(src, dst, length=1 << 20)
            except (zipfile.BadZipFile, zlib.error, EOFError) as err:
                raise CorruptZip(f"{zip_path}: member {member.filename!r} is damaged ({err})") from err
            finally:
                if not partial.is_file() or partial.stat().st_size != member.file_size:
                    partial.unlink(missing_ok=True)
            os.replace(partial, target)
            new += 1
    return new


def _complete_zip(zip_path: Path) -> bool:
    """A zip file with its end-of-archive record (a cut-off download lacks it)."""
    return zip_path.is_file() and zipfile.is_zipfile(zip_path)


def fetch_zip(
    raw: Path,
    zip_path: Path,
    competition: str,
    kaggle: str,
    zip_bytes_estimate: float | None = None,
    files_bytes_estimate: float | None = None,
) -> None:
    """Download the competition zip unless a complete one is in raw_dir; check the disk first.

    The estimates default to ZIP_BYTES_ESTIMATE and FILES_BYTES_ESTIMATE.
    """
    if _complete_zip(zip_path):
        log.info("%s is complete; not downloading it again", zip_path)
        return
    zip_bytes_estimate = ZIP_BYTES_ESTIMATE if zip_bytes_estimate is None else zip_bytes_estimate
    files_bytes_estimate = (
        FILES_BYTES_ESTIMATE if files_bytes_estimate is None else files_bytes_estimate
    )
    _kaggle_exe(kaggle)  # a missing CLI is a setup problem: say so before anything else
    where = find_credentials()
    if where is None:
        raise FrugalmedError(missing_credentials_message(competition))
    log.info("Kaggle credentials: %s", where)
    partial = zip_path.stat().st_size if zip_path.is_file() else 0
    extracted = tree_bytes(raw, skip=(zip_path.name,))
    need = max(0.0, zip_bytes_estimate - partial) + max(0.0, files_bytes_estimate - extracted)
    require_free_space(
        raw, need,
        f"the Kaggle download of {competition} (estimated: a {gb(zip_bytes_estimate)} zip and "
        f"{gb(files_bytes_estimate)} of extracted files, side by side until the extraction "
        f"ends; {gb(partial)} of the zip and {gb(extracted)} of files already there)",
        RAW_DIR_KEY,
    )  # fmt: skip
    run_kaggle(raw, competition, kaggle)
    if not _complete_zip(zip_path) and zip_path.is_file():
        # The CLI kept an incomplete file (it may take it for up to date): start it over.
        log.warning("%s is still incomplete (%s): downloading it from the start", zip_path,
                    gb(zip_path.stat().st_size))
        zip_path.unlink()
        run_kaggle(raw, competition, kaggle, force=True)
    if not _complete_zip(zip_path):
        raise FrugalmedError(
            f"the Kaggle CLI finished but {zip_path} is missing or not a complete zip; "
            "re-run to resume the download"
        )


def download_rsna(
    raw_dir: str | os.PathLike[str],
    marker: str | os.PathLike[str],
    competition: str = COMPETITION,
    kaggle: str = "kaggle",
    zip_bytes_estimate: float | None = None,
    files_bytes_estimate: float | None = None,
) -> None:
    """Download and extract the competition into raw_dir (Kaggle layout); the marker last."""
    raw = Path(raw_dir)
    raw.mkdir(parents=True, exist_ok=True)
    Path(marker).unlink(missing_ok=True)
    zip_path = raw / f"{competition}.zip"
    stamp = raw / UNZIPPED_STAMP
    if not stamp.exists():
        for attempt in (1, 2):
            fetch_zip(raw, zip_path, competition, kaggle, zip_bytes_estimate, files_bytes_estimate)
            try:
                members = inspect_zip(zip_path)
                need = bytes_to_extract(members, raw)
                require_free_space(raw, need, f"extracting {zip_path.name} (exact, from its "
                                   "directory)", RAW_DIR_KEY)  # fmt: skip
                log.info("extracted %d new files from %s", extract(zip_path, raw), zip_path)
                break
            except CorruptZip as err:
                zip_path.unlink(missing_ok=True)
                if attempt == 2:
                    raise FrugalmedError(
                        f"{err}; the zip was downloaded again and is damaged again: check the "
                        "disk (dmesg, fsck) and the network, then re-run"
                    ) from err
                log.error("%s; deleted it, downloading it again", err)
        write_text(stamp, f"{zip_path.name} fully extracted\n")
        zip_path.unlink()
    if not (raw / "train.csv").is_file() or not (raw / "train_images").is_dir():
        raise FrugalmedError(f"{raw} lacks train.csv or train_images/ after extraction")
    write_text(marker, f"Kaggle {competition} downloaded and extracted\n")
