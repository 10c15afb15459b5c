"""Result rows, and their JSON and markdown forms."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from pathlib import Path
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Row:
    """One reported figure. `value` None means not measured; `note` then says why."""

    section: str
    name: str
    value: float | None
    unit: str = "x"
    goal: str = ""
    met: bool | None = None
    note: str = ""

    def formatted(self) -> str:
        if self.value is None:
            return "not measured"
        v = self.value
        text = f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return f"{text} {self.unit}".strip() if self.unit != "x" else f"{text}x"


@dataclass
class Report:
    mode: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, *args: Any, **kwargs: Any) -> Row:
        row = Row(*args, **kwargs)
        if row.value is not None and not math.isfinite(row.value):
            row.note = f"{row.note}; non-finite value {row.value}".strip("; ")
        self.rows.append(row)
        return row

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "commit": self.details.get("commit") or commit(), "machine": machine(),
                "rows": [asdict(r) for r in self.rows], "details": self.details}

    def to_markdown(self) -> str:
        m = self.details.get("machine_at_start") or machine()
        end = self.details.get("machine_at_end") or machine()
        c = self.details.get("commit") or commit()
        lines = [
            f"Mode: `{self.mode}`; commit `{c['sha'][:12]}`{' with uncommitted changes' if c['dirty'] else ''}; "
            f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; "
            f"load average (1/5/15 min) {m['loadavg']} at start, {end['loadavg']} at end; "
            f"took {self.details.get('wall_s', float('nan')):.0f} s. Ratios are medians of per-item "
            "ratios of methods run interleaved in this one run.",
            "",
            "| section | benchmark | measured | goal | met | note |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            met = {True: "yes", False: "**no**", None: "–"}[r.met]
            lines.append(f"| {r.section} | {r.name} | {r.formatted()} | {r.goal} | {met} | {r.note} |")
        for title, table in self.details.get("decoders", {}).items():
            lines += ["", f"Decoders, {title}:", "",
                      "| decoder | s/image | images/s | vs fastest full decode | pixels |", "|---|---|---|---|---|"]
            for d in table:
                lines.append(f"| {d['decoder']} | {d['s_per_image']:.4f} | {d['images_per_s']:.2f} | "
                             f"{d['vs_fastest']:.2f}x | {d['check']} |")
        return "\n".join(lines) + "\n"


def commit() -> dict[str, Any]:
    """The git commit measured, and whether the working tree differed from it."""
    repo = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    sha = git("rev-parse", "HEAD") or "unknown"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"sha": sha, "dirty": dirty, "branch": git("rev-parse", "--abbrev-ref", "HEAD") or "unknown"}


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        memory_gb = None
    try:
        loadavg = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        loadavg = "unknown"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb, "loadavg": loadavg,
            "python": platform.python_version()}
