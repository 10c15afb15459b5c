"""Bytes saved for backward by one forward pass: baseline vs the act8 setting.

    .venv/bin/python benchmarks/act8_saved_bytes.py                      # DenseNet-121, 32 x 256 px
    .venv/bin/python benchmarks/act8_saved_bytes.py --batch-size 8 --arch efficientnet_b0
    .venv/bin/python benchmarks/act8_saved_bytes.py --batch-size 16 --json benchmarks/results/act8/densenet121.json

Counts, with torch.autograd.graph.saved_tensors_hooks, every tensor the autograd graph
keeps (each storage once, model parameters excluded) for: the plain model, act8 applied
to conv/linear only, and the full act8 setting. Forward only, random weights and input
(saved bytes depend on shapes, not values, so they do not depend on the machine's load). The
JSON records the git commit measured, the machine and the library versions. On CUDA it also runs one full training step
(forward + backward) per variant and reports torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import timm
import torch

from bench_report import commit, machine
from frugalmed.quant import quantize_model, saved_tensor_bytes

MB = 1024**2


def build(arch: str, in_chans: int, variant: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = timm.create_model(arch, in_chans=in_chans, num_classes=1).train()
    if variant == "act8_matmul_only":
        quantize_model(model, layers=("matmul",))
    elif variant == "act8":
        quantize_model(model)
    return model


def cuda_step_peak(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Peak allocated bytes over one forward + backward, above what was allocated before."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = torch.cuda.memory_allocated()
    model(x).float().sum().backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - start
    model.zero_grad(set_to_none=True)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="densenet121")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--in-chans", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    measured = commit()  # before the run: the code measured

    device = torch.device(args.device)
    x = torch.randn(args.batch_size, args.in_chans, args.image_size, args.image_size,
                    device=device)
    rows = []
    for variant in ("baseline", "act8_matmul_only", "act8"):
        model = build(args.arch, args.in_chans, variant).to(device)
        t0 = time.perf_counter()
        saved = saved_tensor_bytes(model, x)
        row = {"variant": variant, "saved_mb": saved.activation_bytes / MB,
               "by_dtype_mb": {k: round(v / MB, 2) for k, v in saved.by_dtype.items()},
               "forward_s": round(time.perf_counter() - t0, 2)}
        if device.type == "cuda":
            cuda_step_peak(model, x)  # warm-up (cuDNN workspaces, allocator)
            row["cuda_step_peak_mb"] = cuda_step_peak(model, x) / MB
        rows.append(row)
        del model

    base = rows[0]["saved_mb"]
    print(f"{args.arch}, batch {args.batch_size}, {args.image_size} px, "
          f"{args.in_chans} channel(s), {device}, torch {torch.__version__}, "
          f"timm {timm.__version__}")
    print(f"{'variant':<18} {'saved MB':>10} {'vs baseline':>12}  by dtype (MB)")
    for row in rows:
        row["ratio"] = base / row["saved_mb"]
        extra = (f"  cuda step peak {row['cuda_step_peak_mb']:.0f} MB"
                 if "cuda_step_peak_mb" in row else "")
        print(f"{row['variant']:<18} {row['saved_mb']:>10.1f} {row['ratio']:>11.2f}x  "
              f"{row['by_dtype_mb']}{extra}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "rows": rows, "commit": measured, "machine": machine(),
                       "torch": torch.__version__, "timm": timm.__version__}, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
