"""How long the demo takes a new user: fresh clone, the README's install, the README's run.

    python benchmarks/demo_timing.py                      # clone HEAD, install, run; ~10 min
    python benchmarks/demo_timing.py --venv .venv         # reuse an installed venv (install not timed)
    python benchmarks/demo_timing.py --dry-run --venv .venv   # clone + snakemake -n only (smoke)

It clones the committed HEAD of this repository into a scratch folder (uncommitted changes
are NOT measured: commit first), then times, separately:
  1. install: `python3 -m venv .venv && . .venv/bin/activate && python -m pip install -e ".[test]"`
     (skipped with --venv; pip's download cache is used unless --no-pip-cache);
  2. workflow: `snakemake --cores 2 --resources gpu=1` (the README's demo command), wall and
     CPU seconds of everything it ran.
It checks that the default target produced what issue #20 asks for (figures/radar_vit.pdf among
the radars) and writes benchmarks/results/demo_timing.{json,md} with the commit, the machine
(CPU model and whether it has native bf16 -- the demo's bf16 settings are several times slower
without it), the load average before and after, and the per-rule job counts. The goal: install
+ workflow <= 600 s on 2 idle cores. On a shared machine the wall times are not the goal's
numbers; the load average printed beside them says how shared it was.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 600.0
INSTALL = 'python3 -m venv .venv && . .venv/bin/activate && python -m pip install -e ".[test]"'
RUN = "snakemake --cores 2 --resources gpu=1"
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def machine() -> dict:
    """CPU model, cores, memory, and the CPU flags that decide how fast bf16 runs."""
    info = {"cpu": platform.processor() or "unknown", "cores": os.cpu_count(),
            "python": platform.python_version()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, flags=re.MULTILINE)
        info["cpu"] = model.group(1).strip() if model else info["cpu"]
        flags = set(re.search(r"^flags\s*:\s*(.+)$", cpuinfo, flags=re.MULTILINE).group(1).split())
        info["native_bf16"] = sorted(f for f in BF16_FLAGS if f in flags)
        info["avx512f"] = "avx512f" in flags
        mem = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        info["memory_gb"] = round(int(mem.group(1)) / 2**20, 1) if mem else None
    except (OSError, AttributeError):
        pass
    return info


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def timed(command: str, cwd: Path, log: Path, env: dict | None = None) -> dict:
    """Run a shell command; wall seconds and CPU seconds of its process tree; output to `log`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run(["bash", "-c", command], cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                              env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"command": command, "returncode": proc.returncode, "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1), "log": str(log)}


def job_counts(log_text: str) -> dict:
    """Snakemake's 'Job stats' table of the run (rule -> jobs), without its `total` row."""
    table = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\n\n", log_text, flags=re.DOTALL)
    counts = {}
    for line in (table.group(1).splitlines() if table else []):
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def training_share(work: Path) -> dict:
    """What the training passes themselves took (metrics.json), against the workflow's CPU time:
    the rest is data, figures and every job's start-up (imports, model build, test pass)."""
    by_setting: dict[str, float] = {}
    wall = cpu = 0.0
    runs = 0
    for path in work.glob("results/runs/*/s*/*/*/seed*/metrics.json"):
        record = json.loads(path.read_text())
        runs += 1
        wall += record.get("train_time_s") or 0.0
        cpu_s = record.get("train_cpu_time_s") or 0.0
        cpu += cpu_s
        by_setting[record["setting"]] = by_setting.get(record["setting"], 0.0) + cpu_s
    return {"runs": runs, "train_time_s_sum": round(wall, 1), "train_cpu_s_sum": round(cpu, 1),
            "train_cpu_s_by_setting": {k: round(v, 1) for k, v in sorted(by_setting.items())}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", default=tempfile.gettempdir(), help="where to clone")
    parser.add_argument("--venv", help="reuse this venv instead of installing (install not timed)")
    parser.add_argument("--no-pip-cache", action="store_true", help="install with --no-cache-dir")
    parser.add_argument("--dry-run", action="store_true", help="snakemake -n instead of the run")
    parser.add_argument("--keep", action="store_true", help="keep the clone afterwards")
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/demo_timing"),
                        help="output path without extension (.json and .md are written)")
    args = parser.parse_args(argv)

    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    if dirty:
        print("warning: uncommitted changes are not measured (the clone is of HEAD)", file=sys.stderr)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.strip()
    clone = Path(tempfile.mkdtemp(prefix="frugalmed_demo_", dir=args.scratch))
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone / "repo")], check=True)
    work = clone / "repo"
    subprocess.run(["git", "checkout", "--quiet", commit], cwd=work, check=True)
    record = {"commit": commit, "source_dirty": bool(dirty), "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
              "machine": machine(), "load_average_start": load_average(), "goal_s": GOAL_S}

    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the clone's own install, not a developer's checkout
    if args.venv:
        venv = Path(args.venv).resolve()
        record["install"] = {"skipped": f"reused {venv}, the clone's src/ first on PYTHONPATH"}
        activate = f". {venv}/bin/activate"
        env["PYTHONPATH"] = str(work / "src")  # a reused venv may hold another checkout's install
    else:
        command = INSTALL.replace("install -e", "install --no-cache-dir -e") if args.no_pip_cache else INSTALL
        record["install"] = timed(command, work, clone / "install.log", env)
        record["install"]["pip_cache"] = not args.no_pip_cache
        activate = ". .venv/bin/activate"
        if record["install"]["returncode"] != 0:
            print(Path(record["install"]["log"]).read_text()[-3000:], file=sys.stderr)
            return 1
    run = f"{RUN} -n" if args.dry_run else RUN
    record["workflow"] = timed(f"{activate} && {run}", work, clone / "workflow.log", env)
    record["load_average_end"] = load_average()
    log_text = Path(record["workflow"]["log"]).read_text()
    record["workflow"]["jobs"] = job_counts(log_text)
    if not args.dry_run:
        radars = sorted(p.name for p in (work / "figures").glob("radar_*.pdf"))
        record["workflow"]["radars"] = radars
        record["workflow"]["radar_vit"] = "radar_vit.pdf" in radars
        record["workflow"]["training"] = training_share(work)
    install_s = record["install"].get("wall_s", 0.0)
    record["total_wall_s"] = round(install_s + record["workflow"]["wall_s"], 1)
    record["within_goal"] = (None if args.dry_run or args.venv
                             else record["total_wall_s"] <= GOAL_S)
    ok = record["workflow"]["returncode"] == 0
    if not ok:
        print(log_text[-4000:], file=sys.stderr)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    out.with_suffix(".md").write_text(_markdown(record))
    print(_markdown(record))
    if not args.keep:
        shutil.rmtree(clone, ignore_errors=True)
    return 0 if ok else 1


def _markdown(r: dict) -> str:
    m = r["machine"]
    install = r["install"]
    lines = [
        f"Demo timing at commit `{r['commit'][:12]}`{' (source had uncommitted changes, not measured)' if r['source_dirty'] else ''}, {r['date']}",
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gb')} GB; native bf16: "
        f"{', '.join(m.get('native_bf16') or []) or 'no'}; load average {r['load_average_start']} at start, "
        f"{r['load_average_end']} at end.",
        "",
        "| step | wall s | CPU s | note |",
        "|---|---|---|---|",
        f"| install | {install.get('wall_s', '-')} | {install.get('cpu_s', '-')} | "
        f"{install.get('skipped') or ('pip cache ' + ('on' if install.get('pip_cache') else 'off'))} |",
        f"| workflow | {r['workflow']['wall_s']} | {r['workflow']['cpu_s']} | "
        f"{sum(r['workflow'].get('jobs', {}).values())} jobs, {r['workflow'].get('jobs', {}).get('train', 0)} training |",
        f"| total | {r['total_wall_s']} | | goal <= {r['goal_s']:.0f} s on 2 idle cores: "
        f"{ {True: 'met', False: 'NOT met', None: 'not applicable (install skipped or dry run)'}[r['within_goal']] } |",
    ]
    if "radars" in r["workflow"]:
        lines += ["", f"Radars built: {', '.join(r['workflow']['radars'])}"]
    if "training" in r["workflow"]:
        t = r["workflow"]["training"]
        lines += [f"Training passes ({t['runs']} runs): {t['train_cpu_s_sum']} CPU s of the workflow's "
                  f"{r['workflow']['cpu_s']}; by setting: {t['train_cpu_s_by_setting']}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
