"""What bf16 costs on this CPU: one training step of the demo's models in fp32 and in bf16.

    python benchmarks/bf16_step.py              # writes benchmarks/results/bf16_step.{json,md}
    python benchmarks/bf16_step.py --steps 5    # quicker, noisier

On a CPU the demo's `amp` and `amp_bnb8` autocast to bfloat16 and `bnb8_half` keeps bfloat16
weights. A CPU with native bf16 (AVX-512 BF16, AMX) runs that about as fast as fp32; one
without emulates it, and the demo takes longer there (README, "How long"). This script times a
training step (forward, backward, Adam) of each demo model at the demo's input size and batch,
one thread, in the three precisions, side by side in one process, and reports each bf16 time as
a ratio to fp32. It runs that twice: with the CPU's own instruction sets, and with PyTorch and
oneDNN capped at AVX2 (`ATEN_CPU_CAPABILITY=avx2`, `ONEDNN_MAX_CPU_ISA=AVX2`), which is how a
CPU without native bf16 (and without AVX-512) runs them. The cap is an emulation of such a CPU
on this one, not a measurement of another machine: the table says which rows are capped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAP_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def time_steps(model_name: str, steps: int) -> dict[str, float]:
    """Median seconds per training step of one demo model in each precision (this process)."""
    import statistics

    import torch
    import yaml

    from frugalmed.train.loop import Precision
    from frugalmed.train.models import build_model
    from frugalmed.train.settings import get_setting

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    model_cfg = config["models"][model_name]
    size, batch = int(config["datasets"]["rsna"]["image_size"]), int(config["train"]["batch_size"])
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    precisions = {"fp32": Precision.for_setting(get_setting("baseline"), cpu),
                  "bf16 autocast": Precision.for_setting(get_setting("amp"), cpu),
                  "bf16 weights": Precision.for_setting(get_setting("bnb8_half"), cpu)}
    seconds = {}
    for name, precision in precisions.items():
        torch.manual_seed(0)
        model = build_model(model_cfg["arch"], model_cfg.get("kwargs"), size).to(precision.weights_dtype)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        images = torch.randn(batch, 1, size, size).to(precision.weights_dtype)
        labels = (torch.rand(batch, 1) > 0.5).float()

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            with precision.autocast():
                logits = model(images)
            torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels).backward()
            optimizer.step()

        for _ in range(2):  # warm-up: first-call allocations and kernel selection
            step()
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        seconds[name] = statistics.median(times)
    return seconds


def measure(model_name: str, steps: int, capped: bool) -> dict[str, float]:
    """time_steps in a fresh process (the ISA cap is read when torch loads)."""
    env = {k: v for k, v in os.environ.items() if k not in CAP_AVX2}
    if capped:
        env.update(CAP_AVX2)
    out = subprocess.run([sys.executable, __file__, "--child", model_name, "--steps", str(steps)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--models", nargs="*", default=["densenet", "vit"])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bf16_step"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(time_steps(args.child, args.steps)))
        return 0

    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_report import commit, machine
    from demo_timing import machine as cpu_features

    rows = []
    for model_name in args.models:
        for capped in (False, True):
            seconds = measure(model_name, args.steps, capped)
            rows.append({"model": model_name, "isa": "capped at AVX2" if capped else "native",
                         "ms_per_step": {k: round(v * 1000, 1) for k, v in seconds.items()},
                         "ratio_to_fp32": {k: round(v / seconds["fp32"], 2) for k, v in seconds.items()
                                           if k != "fp32"}})
    result = {"commit": commit(), "machine": machine(), "native_bf16": cpu_features().get("native_bf16", []),
              "steps": args.steps, "rows": rows}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"bf16 step timing at commit `{result['commit']['sha'][:12]}`"
             f"{' (dirty tree)' if result['commit']['dirty'] else ''}",
             f"Machine: {result['machine']['cpu']}, native bf16: {', '.join(result['native_bf16']) or 'no'}; "
             f"load average {result['machine']['loadavg']}; median of {args.steps} steps, 1 thread.",
             "", "| model | instruction sets | fp32 ms/step | bf16 autocast ms (x fp32) | bf16 weights ms (x fp32) |",
             "|---|---|---|---|---|"]
    for row in rows:
        ms, ratio = row["ms_per_step"], row["ratio_to_fp32"]
        lines.append(f"| {row['model']} | {row['isa']} | {ms['fp32']} | {ms['bf16 autocast']} "
                     f"({ratio['bf16 autocast']}x) | {ms['bf16 weights']} ({ratio['bf16 weights']}x) |")
    lines += ["", "'capped at AVX2' emulates a CPU without native bf16 on this machine "
              "(ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2); it is not another machine's measurement."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
