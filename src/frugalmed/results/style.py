"""What every results figure shares: one colour and marker per setting; saving is frugalmed.plotting."""

from __future__ import annotations

from typing import Iterable

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (jobs run headless)
import matplotlib.pyplot as plt  # noqa: E402,F401 - sets the Agg backend before any figure module uses it

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
