"""What every figure shares: one colour and marker per setting, atomic PDF+PNG saving."""

from __future__ import annotations

import os
from typing import Iterable

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (jobs run headless)
import matplotlib.pyplot as plt  # noqa: E402

from frugalmed.atomic import atomic_path  # noqa: E402
from frugalmed.results.summary import setting_order  # noqa: E402

_FIXED = {
    "baseline": "#222222",
    "amp": "tab:blue",
    "bnb8": "tab:orange",
    "bnb8_half": "tab:green",
    "amp_bnb8": "tab:red",
    "act8": "tab:purple",
    "act8_bnb8": "tab:brown",
}
_SPARE = ["tab:pink", "tab:olive", "tab:cyan", "tab:gray"]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h"]


def setting_styles(settings: Iterable[str]) -> dict[str, dict[str, str]]:
    """Colour + marker per setting: fixed for the known ones so every figure agrees."""
    ordered = setting_order(settings)
    known = list(_FIXED)
    spare = iter(_SPARE * 4)
    styles = {}
    for i, name in enumerate(ordered):
        slot = known.index(name) if name in known else len(known) + i
        styles[name] = {
            "color": _FIXED.get(name) or next(spare),
            "marker": _MARKERS[slot % len(_MARKERS)],
        }
    return styles


def save_figure(fig: plt.Figure, pdf_path: str | os.PathLike[str],
                png_path: str | os.PathLike[str], dpi: int = 150) -> None:
    """Write the figure as PDF and PNG, each atomically, then free it.

    Timestamps are left out of the metadata so a rerun on the same numbers gives the same files.
    """
    with atomic_path(pdf_path) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
