"""Mean +- std over seeds per dataset x model x scale x setting, with % change and PePR.

Diverged runs are counted but excluded from every mean and std (a diverged run's AUC and
cost say nothing about the setting's typical behaviour, and silently averaging them in would
hide the failure); the count is reported beside the means. Std is the sample std (ddof=1);
with one usable seed it is NaN (shown as "n/a"), not 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from frugalmed.results.labels import group_label
from frugalmed.results.measures import add_measures, axis_short
from frugalmed.results.pepr import PEPR_SCOPE, pepr
from frugalmed.results.summary import is_estimated, setting_order

GROUP = ["dataset", "model", "scale", "setting"]
DEFAULT_MAX_HOST_LOAD = 0.25  # study.max_host_load's default (config/schema.yaml)
# metric column -> short name used in the aggregate's column names
METRICS = {
    "test_auc": "auc",
    "energy_kwh": "energy_kwh",
    "peak_memory_gb": "memory_gb",
    "train_time_s": "time_s",
    # bytes autograd keeps for backward in one training forward pass (what act8 shrinks;
    # peak RSS on a CPU hides it), in MB; NaN for runs from before it was measured
    "saved_activation_mb": "activations_mb",
    # the memory axis of comparisons and figures: tensor memory on CPU runs, CUDA max allocated
    # on CUDA runs, peak memory for older runs (frugalmed.results.measures)
    "axis_memory_gb": "axis_memory_gb",
    "tensor_memory_gb": "tensor_memory_gb",
}
# resource column -> PePR column
PEPR_RESOURCES = {"energy_kwh": "pepr_energy", "axis_memory_gb": "pepr_memory", "train_time_s": "pepr_time"}
DDOF = 1


def add_pepr(summary: pd.DataFrame) -> pd.DataFrame:
    """Per-run PePR for energy, memory and time; R normalised within PEPR_SCOPE (dataset x
    scale x model: the settings of one model, the comparison the study makes), so runs of
    other models, datasets or scales never change a score.

    Only non-diverged runs define the min-max range and get a score.
    """
    out = summary.copy()
    for col in PEPR_RESOURCES.values():
        out[col] = np.nan
    ok = ~out["diverged"]
    for _, idx in out[ok].groupby(list(PEPR_SCOPE)).groups.items():
        runs = out.loc[idx]
        for resource, col in PEPR_RESOURCES.items():
            out.loc[idx, col] = pepr(runs["test_auc"], runs[resource])
    return out


def aggregate(summary: pd.DataFrame, max_host_load: float = DEFAULT_MAX_HOST_LOAD) -> pd.DataFrame:
    """One row per dataset x model x scale x setting (settings in the contract's order).

    Columns: n_runs, n_diverged, n_seeds (runs used), seeds, then for each metric m in
    auc, energy_kwh, memory_gb, time_s, activations_mb, axis_memory_gb, tensor_memory_gb: m_mean,
    m_std, m_n, m_change_pct (vs baseline of the same dataset/model/scale); then
    pepr_{energy,memory,time}_{mean,std}; energy_source, energy_estimated, memory_source, device,
    label (the precision that really ran), axis_memory_source, n_contended (runs measured on a
    busy host), host_load_recorded.
    """
    if "axis_memory_gb" not in summary.columns:
        summary = add_measures(summary, max_host_load)
    runs = add_pepr(_with_activation_mb(summary))
    rows = []
    for key, group in runs.groupby(GROUP, sort=False):
        used = group[~group["diverged"]]
        row = dict(zip(GROUP, key))
        row.update(
            n_runs=len(group),
            n_diverged=int(group["diverged"].sum()),
            n_seeds=len(used),
            seeds=" ".join(str(s) for s in sorted(used["seed"])),
        )
        for col, name in METRICS.items():
            row.update(_stats(used[col], name))
        for col in PEPR_RESOURCES.values():
            stats = _stats(used[col], col)
            row[f"{col}_mean"], row[f"{col}_std"] = stats[f"{col}_mean"], stats[f"{col}_std"]
        row["energy_source"] = _sources(group["energy_source"])
        row["energy_estimated"] = bool(group["energy_source"].map(is_estimated).any())
        row["memory_source"] = _sources(group["memory_source"])
        row["device"] = _sources(group["device"])
        row["label"] = group_label(group)
        row["axis_memory_source"] = axis_short(used["axis_memory_source"] if len(used) else group["axis_memory_source"])
        row["n_contended"] = int(used["contended"].sum())
        row["host_load_recorded"] = bool(group["host_load_recorded"].all())
        rows.append(row)
    table = pd.DataFrame(rows)
    table = _add_changes(table)
    return _ordered(table)


def _with_activation_mb(summary: pd.DataFrame) -> pd.DataFrame:
    saved = summary.get("saved_activation_bytes", pd.Series(np.nan, index=summary.index))
    return summary.assign(saved_activation_mb=pd.to_numeric(saved, errors="coerce") / 1e6)


def _stats(values: pd.Series, name: str) -> dict[str, float]:
    finite = values[np.isfinite(values.astype(float))]
    return {
        f"{name}_mean": float(finite.mean()) if len(finite) else np.nan,
        f"{name}_std": float(finite.std(ddof=DDOF)) if len(finite) > DDOF else np.nan,
        f"{name}_n": len(finite),
    }


def _sources(values: pd.Series) -> str:
    return ";".join(sorted(set(values.astype(str))))


def _add_changes(table: pd.DataFrame) -> pd.DataFrame:
    """% change of each mean against the baseline setting of the same dataset/model/scale."""
    base = table[table["setting"] == "baseline"].set_index(["dataset", "model", "scale"])
    keys = pd.MultiIndex.from_frame(table[["dataset", "model", "scale"]])
    for name in METRICS.values():
        ref = base[f"{name}_mean"].reindex(keys).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            change = 100.0 * (table[f"{name}_mean"].to_numpy() - ref) / ref
        table[f"{name}_change_pct"] = np.where(np.isfinite(change), change, np.nan)
    return table


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    order = {s: i for i, s in enumerate(setting_order(table["setting"].unique()))}
    table = table.assign(_o=table["setting"].map(order))
    table = table.sort_values(["dataset", "model", "scale", "_o"], kind="stable").drop(columns="_o")
    lead = [*GROUP, "n_runs", "n_diverged", "n_seeds", "seeds"]
    metric_cols = [
        f"{name}_{part}" for name in METRICS.values() for part in ("mean", "std", "n", "change_pct")
    ]
    pepr_cols = [f"{c}_{part}" for c in PEPR_RESOURCES.values() for part in ("mean", "std")]
    tail = ["energy_source", "energy_estimated", "memory_source", "device", "label",
            "axis_memory_source", "n_contended", "host_load_recorded"]
    return table[lead + metric_cols + pepr_cols + tail].reset_index(drop=True)
