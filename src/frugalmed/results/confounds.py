"""The data stage's confound report (results/data/{dataset}/confounds.json), in words.

A column such as the scanner or the site is a confound when a predictor that only knows an
image's group already separates the labels (its `group_only_auc`). Then part of any model's
test AUC may come from recognising the group, not the disease, and every table, comparison and
recommendation says so next to the AUCs.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from frugalmed.errors import FrugalmedError

# plain words for the grouping columns the study knows; any other column is named as it is
PLAIN = {"machine_id": "scanner", "site_id": "site"}


class ConfoundsError(FrugalmedError):
    """confounds.json is unreadable or not in the documented layout."""


@dataclass(frozen=True)
class Confounds:
    dataset: str
    path: str | None
    group_only_auc: dict[str, float | None] = field(default_factory=dict)
    flagged: tuple[str, ...] = ()
    threshold: float | None = None

    def sentences(self) -> list[str]:
        """One sentence per flagged column, e.g. 'a scanner-only predictor (machine_id)
        reaches test AUC 0.67 on rsna (flagged at >= 0.60)'."""
        out = []
        for column in self.flagged:
            value = self.group_only_auc.get(column)
            auc = f"{value:.2f}" if value is not None and math.isfinite(value) else "n/a"
            at = f" (flagged at ≥ {self.threshold:.2f})" if self.threshold is not None else ""
            out.append(
                f"Confound: a {_plain(column)}-only predictor reaches test AUC {auc} on "
                f"{self.dataset}{at}, so part of every model's AUC there may come from "
                f"recognising the {PLAIN.get(column, column)} rather than the finding.")
        return out

    def short(self) -> str:
        """'machine_id 0.67; site_id 0.61' for a CSV cell ('' when nothing is flagged)."""
        parts = []
        for column in self.flagged:
            value = self.group_only_auc.get(column)
            parts.append(f"{column} {value:.2f}" if value is not None and math.isfinite(value)
                         else column)
        return "; ".join(parts)

    def checked_note(self) -> str:
        """What was checked, for notes even when nothing is flagged."""
        if self.path is None:
            return f"No confound report for {self.dataset} (no grouping columns checked)."
        if not self.flagged:
            cols = ", ".join(f"{c} {v:.2f}" if v is not None and math.isfinite(v) else f"{c} n/a"
                             for c, v in self.group_only_auc.items()) or "none"
            return (f"Confound check ({self.path}): no grouping column reaches the flag threshold "
                    f"{self.threshold}; group-only test AUCs: {cols}.")
        return " ".join(self.sentences())


def _plain(column: str) -> str:
    return PLAIN.get(column, column) + (f" ({column})" if column in PLAIN else "")


def read_confounds(path: str | os.PathLike[str] | None, dataset: str) -> Confounds:
    """confounds.json of `dataset`; an empty report when `path` is None (none configured)."""
    if path is None:
        return Confounds(dataset, None)
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        columns = data["columns"]
        flagged = tuple(str(c) for c in data.get("flagged", []))
        threshold = data.get("threshold")
        aucs = {str(c): (None if v.get("group_only_auc") is None else float(v["group_only_auc"]))
                for c, v in columns.items()}
    except FileNotFoundError:
        raise ConfoundsError(f"{path}: missing; run the dataset's data check") from None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as err:
        raise ConfoundsError(
            f"{path}: not a confound report in the documented layout ({type(err).__name__}: "
            f"{err}); delete it and rerun the dataset's data check") from None
    return Confounds(dataset, path.as_posix(), aucs, flagged,
                     None if threshold is None else float(threshold))
