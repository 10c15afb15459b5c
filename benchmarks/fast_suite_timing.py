"""How long the inner-loop test run takes: `python -m pytest -m "not slow"` (issue #18's goal:
under 90 s on 2 cores), plain and with one xdist worker per core.

    python benchmarks/fast_suite_timing.py     # writes benchmarks/results/fast_suite.{json,md}

Run it on an idle machine: the wall times are the goal's numbers only when nothing else runs
(the load average before and after is recorded beside them).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 90.0
VARIANTS = {
    "plain": [sys.executable, "-m", "pytest", "-m", "not slow", "-q", "-rf", "-p", "no:cacheprovider"],
    "-n 2": [sys.executable, "-m", "pytest", "-m", "not slow", "-q", "-rf", "-p", "no:cacheprovider",
             "-n", "2", "--dist", "loadfile"],
}


def run(command: list[str]) -> dict:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?)", tail)}
    failed = re.findall(r"^FAILED (\S+)", done.stdout, flags=re.M)
    return {"wall_s": round(wall, 1), "exit_code": done.returncode, "summary": tail,
            "failed_tests": failed, **counts}


def main() -> int:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_report import commit, machine

    before = machine()
    results = {name: run(command) for name, command in VARIANTS.items()}
    after = machine()
    out = {"commit": commit(), "machine": before, "loadavg_after": after["loadavg"],
           "goal_s": GOAL_S, "results": results}
    path = REPO / "benchmarks" / "results" / "fast_suite"
    path.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    lines = [f"`pytest -m \"not slow\"` at commit `{out['commit']['sha'][:12]}`"
             f"{' (dirty tree)' if out['commit']['dirty'] else ''}",
             f"Machine: {before['cpu']}, {before['cores']} cores; load average {before['loadavg']} "
             f"before, {after['loadavg']} after.", "",
             f"| run | wall s | passed | deselected (slow) | goal <= {GOAL_S:g} s |", "|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['wall_s']} | {r.get('passed', '?')} | {r.get('deselected', '?')} | "
                     f"{'met' if r['exit_code'] == 0 and r['wall_s'] <= GOAL_S else 'NOT met'} |")
    for name, r in results.items():
        if r["failed_tests"]:
            lines.append(f"Failed in the {name} run: {', '.join(r['failed_tests'])}")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(r["exit_code"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
