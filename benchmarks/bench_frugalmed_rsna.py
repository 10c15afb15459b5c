"""The one place the benchmarks call frugalmed's RSNA stage (frugalmed.rsna.preprocess).

- per image: `process_image` (decode, modality/VOI LUTs, crop, flip, resize, every scale) and
  the row appended to the outputs with the dataset writer's `NpyAppender` (what the stage uses);
- whole cohort: `preprocess_rsna`, the function the workflow's rule calls, with its `threads`.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pydicom

SPLITS = {"train": 0.6, "val": 0.2, "test": 0.2, "seed": 0}


@dataclass
class PerImage:
    """A callable per-image pipeline writing row after row into .npy outputs; `close` discards them."""

    run: Callable[[Path], object]
    close: Callable[[], None]
    decoder_name: str | None
    note: str


def _decoder_name(path: Path, image_size: int) -> str | None:
    """Which bench_decoders candidate does frugalmed's decoding for this file: asked of
    frugalmed itself (the decoder it reports), not predicted."""
    from pydicom.pixels import get_decoder
    from frugalmed.rsna.decode import decode_mammogram

    used = decode_mammogram(path, image_size).decoder.split(" + ")[0]  # e.g. "pillow reduce=3"
    if used != "pydicom":
        return used
    syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    plugins = list(get_decoder(syntax).available_plugins)
    return f"pydicom+{plugins[0]}" if plugins else None


def per_image(files: list[Path], image_size: int, scales: list[int], scratch: Path) -> PerImage:
    from frugalmed.dataset.writer import NpyAppender
    from frugalmed.rsna.preprocess import ImageSpec, process_image

    spec = ImageSpec(image_size=image_size, scales=tuple(scales))
    outdir = Path(tempfile.mkdtemp(prefix="frugalmed-bench-rows-", dir=scratch))
    writers = {s: NpyAppender(outdir / f"images_s{s}.npy", image_size // s) for s in scales}

    def run(path: Path) -> None:
        outcome = process_image(str(path), spec)
        if outcome.images is None:
            raise RuntimeError(f"frugalmed rejected {path}: {outcome.reason} {outcome.detail}")
        for s, writer in writers.items():
            writer.append(outcome.images[s])

    def close() -> None:
        for writer in writers.values():
            writer.discard()
        shutil.rmtree(outdir, ignore_errors=True)

    return PerImage(run, close, _decoder_name(files[0], image_size),
                    "frugalmed.rsna.preprocess.process_image + NpyAppender row appends")


def subset_raw_dir(files: list[Path], dst: Path) -> Path:
    """A raw_dir holding only `files` (symlinked) and their train.csv rows."""
    src = files[0].parents[2]
    wanted = {f.stem for f in files}
    if dst.exists():
        shutil.rmtree(dst)
    for f in files:
        (dst / "train_images" / f.parent.name).mkdir(parents=True, exist_ok=True)
        os.symlink(f.resolve(), dst / "train_images" / f.parent.name / f.name)
    with open(src / "train.csv", newline="") as fh, open(dst / "train.csv", "w", newline="") as out:
        reader = csv.DictReader(fh)
        writer = csv.DictWriter(out, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(r for r in reader if r["image_id"] in wanted)
    return dst


def preprocess_cohort(raw_dir: Path, out_dir: Path, image_size: int, scales: list[int], threads: int) -> int:
    """The workflow's RSNA preprocessing of raw_dir into out_dir; returns the images kept."""
    from frugalmed.rsna.preprocess import ImageSpec, preprocess_rsna

    outputs = {"manifest": str(out_dir / "manifest.csv"), "rejects": str(out_dir / "rejects.csv"),
               "selection": str(out_dir / "selection.json"),
               **{f"images_s{s}": str(out_dir / f"images_s{s}.npy") for s in scales}}
    manifest = preprocess_rsna(raw_dir, outputs, max_age=200, label="birads_followup",
                               spec=ImageSpec(image_size=image_size, scales=tuple(scales)),
                               splits=SPLITS, max_reject_fraction=0.0, threads=threads)
    return len(manifest)


def cohort_job(files: list[Path], image_size: int, scales: list[int], workdir: Path, workers: int) -> Callable[[], None]:
    """A job preprocessing `files` as a cohort with `workers` processes (outputs overwritten)."""
    raw = subset_raw_dir(files, workdir / "raw")

    def job() -> None:
        kept = preprocess_cohort(raw, workdir / "out", image_size, scales, workers)
        if kept != len(files):
            raise RuntimeError(f"frugalmed kept {kept} of {len(files)} images")

    return job
