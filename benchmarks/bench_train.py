"""Training-loop overhead: frugalmed's full training run (codecarbon, peak-memory reads, a
checkpoint per epoch, validation, test scoring, metrics writing) against a bare PyTorch loop
doing the same work (same model, same setting, same epochs, same validation and test passes)
on tensors already in memory, with nothing measured.

Also the share of training-step time frugalmed's loop spends waiting for its DataLoader:
the real `train_run`'s training loaders are wrapped (monkeypatched from here, the package is
untouched) so every `next(batch)` is timed inside the real run.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from bench_timing import time_repeated


@dataclass(frozen=True)
class TrainSpec:
    n_images: int = 384
    image_size: int = 64
    epochs: int = 3
    batch_size: int = 32
    setting: str = "baseline"
    arch: str = "densenet121"
    model_kwargs: tuple = (("growth_rate", 8), ("block_config", (2, 2, 2, 2)))  # the demo's narrowed DenseNet
    seed: int = 1


def write_dataset(root: Path, spec: TrainSpec) -> tuple[Path, Path]:
    """A manifest + images_s1.npy in the workflow's format: random images, learnable labels."""
    rng = np.random.default_rng(spec.seed)
    n = spec.n_images
    labels = (np.arange(n) % 3 == 0).astype(int)
    images = rng.integers(0, 200, size=(n, spec.image_size, spec.image_size), dtype=np.uint8)
    images[labels == 1, : spec.image_size // 4, : spec.image_size // 4] = 255
    split = np.array(["train", "train", "train", "val", "test"])[np.arange(n) % 5]
    manifest = pd.DataFrame({"sample_id": np.arange(n), "patient_id": np.arange(n), "split": split, "label": labels})
    root.mkdir(parents=True, exist_ok=True)
    manifest_path, images_path = root / "manifest.csv", root / "images_s1.npy"
    manifest.to_csv(manifest_path, index=False)
    np.save(images_path, images)
    return manifest_path, images_path


class _TimedLoader:
    """Iterates a DataLoader and adds the seconds spent inside next() to `waits`."""

    def __init__(self, loader, waits: list[float]) -> None:
        self.loader, self.waits = loader, waits
        self.batch_size = loader.batch_size

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        iterator = iter(self.loader)
        while True:
            start = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                return
            self.waits.append(time.perf_counter() - start)
            yield batch


def frugalmed_run(manifest: Path, images: Path, spec: TrainSpec, workdir: Path) -> dict[str, Any]:
    """One real `train_run`; returns its metrics, epoch table and data-wait seconds."""
    from frugalmed.train import run as train_module

    waits: list[float] = []
    original = train_module.make_loader

    def timed_make_loader(dataset, batch_size, num_workers, shuffle_seed=None, **options):
        loader = original(dataset, batch_size, num_workers, shuffle_seed=shuffle_seed, **options)
        return _TimedLoader(loader, waits) if shuffle_seed is not None else loader

    out = Path(tempfile.mkdtemp(dir=workdir))
    train_module.make_loader = timed_make_loader
    try:
        metrics = train_module.train_run(train_module.RunSpec(
            dataset="rsna", scale=1, model="bench", setting=spec.setting, seed=spec.seed,
            arch=spec.arch, model_kwargs=_kwargs(spec), manifest=str(manifest), images=str(images),
            metrics_path=str(out / "metrics.json"), epochs_path=str(out / "epochs.csv"),
            checkpoint_path=str(out / "last.pt"), epochs=spec.epochs, batch_size=spec.batch_size,
            lr=1e-3, patience=spec.epochs + 1, threads=1,
        ))
    finally:
        train_module.make_loader = original
    epochs = pd.read_csv(out / "epochs.csv")
    return {"metrics": metrics, "train_pass_s": float(epochs["train_pass_s"].sum()),
            "data_wait_s": float(sum(waits)), "epochs_run": len(epochs)}


def _kwargs(spec: TrainSpec) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in spec.model_kwargs}


def bare_run(manifest: Path, images: Path, spec: TrainSpec) -> float:
    """The same training in plain PyTorch on in-memory tensors; returns its train-pass seconds."""
    from frugalmed.train.loop import Precision
    from frugalmed.train.models import build_model
    from frugalmed.train.run import make_optimizer
    from frugalmed.train.settings import get_setting

    torch.set_num_threads(1)
    torch.manual_seed(spec.seed)
    table = pd.read_csv(manifest)
    pixels = torch.from_numpy(np.load(images).astype(np.float32) / 255.0).unsqueeze(1)
    train = torch.tensor((table["split"] == "train").to_numpy())
    mean, std = pixels[train].mean(), pixels[train].std()
    pixels = (pixels - mean) / std
    labels = torch.tensor(table["label"].to_numpy(), dtype=torch.float32).unsqueeze(1)
    split = {name: torch.tensor((table["split"] == name).to_numpy()) for name in ("train", "val", "test")}
    data = {name: (pixels[m], labels[m]) for name, m in split.items()}

    setting = get_setting(spec.setting)
    precision = Precision.for_setting(setting, torch.device("cpu"))
    model = build_model(spec.arch, _kwargs(spec), spec.image_size).to(dtype=precision.weights_dtype)
    optimizer = make_optimizer(setting, model.parameters(), 1e-3)
    loss_fn = nn.functional.binary_cross_entropy_with_logits
    x_train, y_train = data["train"]
    n = len(x_train)
    drop_last = n % spec.batch_size == 1
    train_pass = 0.0
    for _epoch in range(spec.epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(n)
        stop = n - (n % spec.batch_size) if drop_last else n
        for i in range(0, stop, spec.batch_size):
            idx = order[i : i + spec.batch_size]
            optimizer.zero_grad(set_to_none=True)
            with precision.autocast():
                logits = model(x_train[idx].to(precision.weights_dtype))
            loss = loss_fn(logits.float(), y_train[idx])
            loss.backward()
            optimizer.step()
            loss.item()
        train_pass += time.perf_counter() - start
        _evaluate(model, *data["val"], spec.batch_size, precision)
    _evaluate(model, *data["test"], spec.batch_size, precision)
    return train_pass


@torch.no_grad()
def _evaluate(model, x, y, batch_size: int, precision) -> None:
    model.eval()
    for i in range(0, len(x), batch_size):
        with precision.autocast():
            logits = model(x[i : i + batch_size].to(precision.weights_dtype))
        torch.sigmoid(logits.float())


CODECARBON_CHILD = """
import json, sys, time
import torch
t0 = time.perf_counter()
from frugalmed.train.measure.energy import EnergyMeter
from frugalmed.train.models import build_model
t1 = time.perf_counter()
meter = EnergyMeter("DNK")
if sys.argv[1] == "foreground":
    meter.start()
else:
    meter.start_in_background()
t2 = time.perf_counter()
# what a training job does meanwhile: build its model (the demo DenseNet)
build_model("densenet121", {"growth_rate": 16, "block_config": [3, 3, 3]}, 64)
t3 = time.perf_counter()
meter.ready()
t4 = time.perf_counter()
with meter.phase("epoch"):
    pass
meter.stop()
print(json.dumps({"import_s": t1 - t0, "start_s": t2 - t1, "build_s": t3 - t2, "wait_s": t4 - t3,
                  "to_first_epoch_s": t4 - t1}))
"""


def codecarbon_fresh_process() -> dict[str, dict[str, float]]:
    """What codecarbon costs a fresh process (each training job of the workflow is one): the
    in-process comparison above pays it once in its warm-up run and so leaves it out.

    `foreground`: the tracker set up before building the model; `background` (what train_run
    does): set up in a thread while the model is built, so only `wait_s` is left on the path.
    Run alternately, 3 times each; medians.
    """
    import os
    import subprocess
    import sys

    src = str(Path(__file__).resolve().parents[1] / "src")  # this checkout's package, not an install
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    samples: dict[str, list[dict[str, float]]] = {"foreground": [], "background": []}
    for _ in range(3):
        for mode in samples:
            proc = subprocess.run([sys.executable, "-c", CODECARBON_CHILD, mode], capture_output=True,
                                  text=True, check=True, env=env)
            samples[mode].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {mode: {key: float(np.median([r[key] for r in rows])) for key in rows[0]}
            for mode, rows in samples.items()}


def run(spec: TrainSpec, repeats: int, scratch: Path | None = None) -> dict[str, Any]:
    """Interleave `repeats` frugalmed runs with `repeats` bare runs; ratios of medians per pair."""
    with tempfile.TemporaryDirectory(prefix="frugalmed-bench-train-", dir=scratch) as tmp:
        tmp = Path(tmp)
        manifest, images = write_dataset(tmp / "data", spec)
        results: dict[str, list] = {"frugalmed": [], "bare": []}
        cpu: dict[str, list[float]] = {"frugalmed": [], "bare": []}

        def timed(name: str, work):
            def go() -> None:
                start = time.process_time()
                results[name].append(work())
                cpu[name].append(time.process_time() - start)
            return go

        paired = time_repeated({
            "frugalmed": timed("frugalmed", lambda: frugalmed_run(manifest, images, spec, tmp)),
            "bare": timed("bare", lambda: bare_run(manifest, images, spec)),
        }, repeats)
    frugal = results["frugalmed"][1:]  # the warm-up pair is not in `paired` either
    bare = results["bare"][1:]
    n_train = int(math.ceil(spec.n_images * 3 / 5))
    steps = spec.epochs * math.ceil(n_train / spec.batch_size)
    train_pass_ratio = float(np.median([b / f["train_pass_s"] for f, b in zip(frugal, bare)]))
    wait_share = float(np.median([f["data_wait_s"] / f["train_pass_s"] for f in frugal]))
    fixed = statistics.median(f - b for f, b in zip(paired.seconds["frugalmed"], paired.seconds["bare"]))
    # CPU seconds of this process (all its threads, codecarbon's included): on a machine whose
    # cores other jobs share, far steadier than wall time; it leaves out waits (fsync, I/O).
    cpu_ratios = [b / f for f, b in zip(cpu["frugalmed"][1:], cpu["bare"][1:])]
    wall_ratios = [b / f for f, b in zip(paired.seconds["frugalmed"], paired.seconds["bare"])]
    return {
        "steps": steps,
        "whole_run_ratio": paired.ratio("bare", "frugalmed"),  # = frugalmed steps/s / bare steps/s
        "train_pass_ratio": train_pass_ratio,
        "data_wait_share": wait_share,
        "frugalmed_steps_per_s": steps / paired.median_s("frugalmed"),
        "bare_steps_per_s": steps / paired.median_s("bare"),
        "energy_source": frugal[-1]["metrics"].get("energy_source"),
        "memory_source": frugal[-1]["metrics"].get("memory_source"),
        "epochs_run": frugal[-1]["epochs_run"],
        "extra_s_per_run": fixed,
        "whole_run_ratio_range": [min(wall_ratios), max(wall_ratios)],
        "cpu_ratio": statistics.median(cpu_ratios),
        "cpu_ratio_range": [min(cpu_ratios), max(cpu_ratios)],
        "run_s": {"frugalmed": paired.median_s("frugalmed"), "bare": paired.median_s("bare")},
        "codecarbon_fresh_process": codecarbon_fresh_process(),
    }
