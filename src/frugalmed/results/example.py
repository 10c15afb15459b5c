"""The worked example of docs/results.md ("Reading the results"), written from a real run.

    python -m frugalmed.results.example results/comparisons/rsna.csv [--model M] [--setting S]

prints one comparison row explained number by number, in Markdown, so the documentation's
example is produced by this script from the demo's outputs rather than typed by hand. Without
--model/--setting it picks the row with the most seed pairs (then the largest energy saving).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from frugalmed.results.comparisons import signed
from frugalmed.results.recommendations import parse_flag


def pick(frame: pd.DataFrame, model: str | None, setting: str | None) -> pd.Series:
    rows = frame
    if model:
        rows = rows[rows["model"] == model]
    if setting:
        rows = rows[rows["setting"] == setting]
    if rows.empty:
        raise SystemExit(f"no comparison row for model={model!r} setting={setting!r}")
    rows = rows.assign(_e=rows["energy_ratio"].fillna(math.inf))
    return rows.sort_values(["n_pairs", "_e"], ascending=[False, True]).iloc[0]


def explain(row: pd.Series, source: str) -> str:
    def ratio(name: str) -> str:
        est, lo, hi = (row[f"{name}_ratio{s}"] for s in ("", "_ci_low", "_ci_high"))
        if not math.isfinite(est):
            return f"no {name} ratio (not measured)"
        interval = f" (95 % interval {lo:.2f}–{hi:.2f})" if math.isfinite(lo) else " (one pair: no interval)"
        return f"{est:.2f}× the {name}{interval}"

    verdict = parse_flag(row["noninferior"])
    margin = float(row["margin"])
    lines = [
        f"Take **{row['model']}** on **{row['dataset']}** at scale {row['scale']}, setting "
        f"**{row['label']}** (row of `{source}`).",
        "",
        f"- Pairs: {row['n_pairs']} seeds ({row['seeds']}) have a finished run of both this "
        f"setting and baseline; {row['n_diverged']} seed(s) with a diverged run and "
        f"{row['n_unpaired']} unpaired seed(s) are left out.",
        f"- AUC: baseline {row['auc_baseline']:.3f}, setting {row['auc_setting']:.3f} (means over "
        f"those seeds, from the runs' predictions.csv); ΔAUC = {signed(row['delta_auc'])}.",
        f"- Interval: 95 % CI {signed(row['delta_auc_ci_low'])} to {signed(row['delta_auc_ci_high'])}, "
        f"from {row['bootstrap_resamples']} resamples of seeds and of the "
        f"{row['n_test_patients']} test patients.",
    ]
    if verdict is None:
        lines.append(f"- Verdict: none — {row['verdict']}.")
    else:
        side = "above" if verdict else "not above"
        lines.append(f"- Verdict: the lower bound {signed(row['delta_auc_ci_low'])} is {side} "
                     f"−{margin:g} (study.noninferiority_margin), so the setting is "
                     f"{'non-inferior' if verdict else 'not shown non-inferior'} to baseline.")
    lines.append(f"- Savings: {ratio('energy')}; {ratio('memory')} ({row['memory_source']}); "
                 f"{ratio('time')}.")
    lines += ["", f"The table's sentence: *{row['verdict']}*"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("comparisons", type=Path)
    parser.add_argument("--model")
    parser.add_argument("--setting")
    args = parser.parse_args(argv)
    frame = pd.read_csv(args.comparisons)
    frame["seeds"] = frame["seeds"].fillna("").astype(str)
    sys.stdout.write(explain(pick(frame, args.model, args.setting), args.comparisons.as_posix()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
