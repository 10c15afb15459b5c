"""Saving figures: the one place every figure (data figures, results figures) is written."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (jobs run headless, on nodes too)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from frugalmed.atomic import atomic_path  # noqa: E402

PathLike = str | os.PathLike[str]


def save_figure(fig: Figure, pdf_path: PathLike, png_path: PathLike | None = None,
                dpi: int = 200) -> None:
    """Write the figure as PDF (and PNG), each atomically, then free it.

    Timestamps are left out of the metadata so a rerun on the same numbers gives the same files.
    """
    try:
        with atomic_path(pdf_path) as tmp:
            fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})
        if png_path is not None:
            with atomic_path(png_path) as tmp:
                fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight",
                            metadata={"Software": None})
    finally:
        plt.close(fig)
