"""The entry points the workflow's thin scripts call: one function per results rule."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from frugalmed.atomic import write_csv
from frugalmed.results.aggregate import aggregate
from frugalmed.results.downsampling import plot_downsampling
from frugalmed.results.radar import plot_radar
from frugalmed.results.summary import load_summary
from frugalmed.results.tables import write_tables

log = logging.getLogger(__name__)


def summarize(metrics: Sequence[str], summary_csv: str) -> None:
    summary = load_summary(metrics)
    write_csv(summary_csv, summary)
    log.info("%d runs (%d diverged) -> %s", len(summary), int(summary["diverged"].sum()),
             summary_csv)


def tables(metrics: Sequence[str], dataset: str, csv: str, md: str, tex: str) -> None:
    summary = load_summary(metrics)
    table = aggregate(summary)
    write_tables(table, summary, dataset, csv, md, tex)
    log.info("%d rows of %s -> %s", len(table), dataset, Path(csv).parent)


def radar(metrics: Sequence[str], model: str, pdf: str, png: str) -> None:
    summary = load_summary(metrics)
    plot_radar(aggregate(summary), summary, model, pdf, png)
    log.info("radar of %s from %d runs -> %s", model, len(summary), pdf)


def downsampling(metrics: Sequence[str], model: str, pdf: str, png: str,
                 image_size: int | None) -> None:
    summary = load_summary(metrics)
    plot_downsampling(aggregate(summary), summary, model, pdf, png, image_size=image_size)
    log.info("downsampling of %s from %d runs -> %s", model, len(summary), pdf)
