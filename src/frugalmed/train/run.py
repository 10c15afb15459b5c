"""One training run: build, train with early stopping, score the test set once, measure, write.

Time, energy and memory cover training only (every epoch's training and validation passes);
loading data, building the model, checkpoint writing and process start are excluded. The test
set is scored once, with the best-validation weights, and that pass is measured separately
(inference latency and energy).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch

from frugalmed.atomic import write_csv, write_json
from frugalmed.train import checkpoint as ckpt
from frugalmed.train.data import load_splits, make_loader
from frugalmed.train.environment import environment
from frugalmed.train.loop import Diverged, LossHook, Precision, accuracy, auc_or_none, predict, train_epoch
from frugalmed.train.measure.energy import Energy, EnergyMeter
from frugalmed.train.measure.memory import PeakMemory
from frugalmed.train.models import build_model
from frugalmed.train.settings import Setting, get_setting
from frugalmed.train.state_bytes import state_bytes

log = logging.getLogger(__name__)

EPOCH_COLUMNS = [
    "epoch", "train_loss", "val_loss", "val_auc", "is_best", "epoch_time_s", "train_pass_s",
    "val_pass_s", "cpu_time_s", "energy_kwh", "energy_kwh_gpu", "energy_kwh_cpu", "energy_kwh_ram", "session",
    "diverged",
]


@dataclass
class RunSpec:
    """Everything one training job needs; built from the Snakemake job or by tests."""

    dataset: str
    scale: int
    model: str
    setting: str
    seed: int
    arch: str
    manifest: str
    images: str
    metrics_path: str
    epochs_path: str
    checkpoint_path: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-5
    patience: int = 5
    pretrained: bool | str = False
    threads: int = 1
    num_workers: int | None = None
    energy_country: str = "DNK"
    use_gpu: bool = False
    keep_checkpoint: bool = False
    repo_dir: str | None = None


@dataclass
class Hooks:
    """Test seams: change a step's loss (force a NaN); act after an epoch (simulate a kill)."""

    loss: LossHook | None = None
    after_epoch: Callable[[int], None] | None = None


def choose_device(use_gpu: bool) -> torch.device:
    """CUDA when the job was given a GPU and one is visible; the CPU otherwise."""
    if use_gpu and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def make_optimizer(setting: Setting, params, lr: float) -> torch.optim.Optimizer:
    if setting.optimizer == "adam8bit":
        import bitsandbytes as bnb

        return bnb.optim.Adam8bit(params, lr=lr)
    return torch.optim.Adam(params, lr=lr)


def _fingerprint(spec: RunSpec, device: torch.device) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed: run identity, hyperparameters, inputs."""
    keys = ("dataset", "scale", "model", "setting", "seed", "arch", "model_kwargs", "epochs",
            "batch_size", "lr", "patience", "pretrained")
    inputs = {}
    for name in ("manifest", "images"):
        st = os.stat(getattr(spec, name))
        inputs[name] = (st.st_size, st.st_mtime_ns)
    return {**{k: getattr(spec, k) for k in keys}, "inputs": inputs, "device": device.type}


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_run(spec: RunSpec, hooks: Hooks | None = None) -> dict[str, Any]:
    """Train, evaluate and write metrics.json + epochs.csv; returns the metrics."""
    hooks = hooks or Hooks()
    setting = get_setting(spec.setting)
    torch.set_num_threads(spec.threads)
    device = choose_device(spec.use_gpu)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
    num_workers = spec.num_workers if spec.num_workers is not None else max(spec.threads - 1, 0)
    log.info("run %s/s%s/%s/%s/seed%s on %s (%s threads, %s loader workers)", spec.dataset,
             spec.scale, spec.model, spec.setting, spec.seed, device, spec.threads, num_workers)

    data = load_splits(spec.manifest, spec.images)
    counts = data.counts()
    log.info("data: %s, %d px", counts, data.image_size)
    val_single_class = counts["val"]["positives"] in (0, counts["val"]["n"])
    selection_metric = "val_loss" if val_single_class else "val_auc"
    if val_single_class:
        log.warning("validation split has one class only: AUC undefined, selecting by val_loss")

    ckpt.seed_everything(spec.seed)
    model = build_model(spec.arch, spec.model_kwargs, data.image_size, spec.pretrained,
                        config_key=f"models.{spec.model}")
    if setting.quantize_activations:
        from frugalmed.quant.act8 import quantize_model

        model = quantize_model(model)
    precision = Precision.for_setting(setting, device)
    model = model.to(device=device, dtype=precision.weights_dtype)
    optimizer = make_optimizer(setting, model.parameters(), spec.lr)
    loaders = {name: make_loader(data.datasets[name], spec.batch_size, num_workers)
               for name in ("val", "test")}

    fingerprint = _fingerprint(spec, device)
    state = ckpt.load_checkpoint(spec.checkpoint_path, fingerprint)
    if state is None:
        state = dict(epoch=0, history=[], best_state=None, best_epoch=None, best_score=None,
                     best_val_auc=None, bad_epochs=0, stop_reason=None, train_time_s=0.0,
                     energy=Energy(), peak=None, state_bytes=None, sessions=0)
    else:
        model.load_state_dict(state.pop("model"))
        optimizer.load_state_dict(state.pop("optimizer"))
        scaler_state = state.pop("scaler", None)
        if precision.scaler is not None and scaler_state:
            precision.scaler.load_state_dict(scaler_state)
        ckpt.restore_rng_states(state.pop("rng"))
        state.pop("fingerprint", None)
        log.info("resumed from %s after epoch %d", spec.checkpoint_path, state["epoch"])
        for row in state["history"]:
            log.info("epoch %d (session %d, from the checkpoint): train_loss %s val_loss %s val_auc %s",
                     row["epoch"], row["session"], _fmt(row.get("train_loss")),
                     _fmt(row.get("val_loss")), _fmt(row.get("val_auc")))
    session = state["sessions"] = state["sessions"] + 1
    if "saved_activation_bytes" not in state:
        state["saved_activation_bytes"] = _saved_activation_bytes(
            model, data.datasets["train"], spec.batch_size, precision)

    meter = EnergyMeter(spec.energy_country)
    meter.start()
    memory = PeakMemory(device)
    memory.reset()

    while state["stop_reason"] is None and state["epoch"] < spec.epochs:
        epoch = state["epoch"] + 1
        row: dict[str, Any] = {"epoch": epoch, "session": session, "diverged": False}
        with meter.phase("epoch") as phase:
            _sync(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            try:
                shuffle = make_loader(data.datasets["train"], spec.batch_size, num_workers,
                                      shuffle_seed=spec.seed * 100_003 + epoch)
                row["train_loss"] = train_epoch(model, shuffle, optimizer, precision, hooks.loss)
                _sync(device)
                mid = time.perf_counter()
                probs, labels, row["val_loss"] = predict(model, loaders["val"], precision)
                row["val_auc"] = auc_or_none(labels, probs)
            except Diverged as err:
                log.error("epoch %d: diverged (%s); stopping", epoch, err)
                row["diverged"] = True
                mid = time.perf_counter()
            _sync(device)
            end, cpu_end = time.perf_counter(), time.process_time()
        row.update(epoch_time_s=end - start, train_pass_s=mid - start, val_pass_s=end - mid,
                   cpu_time_s=cpu_end - cpu_start)
        state["train_time_s"] += end - start
        state["train_cpu_time_s"] = state.get("train_cpu_time_s", 0.0) + cpu_end - cpu_start
        if phase.energy is not None:
            state["energy"] = state["energy"] + phase.energy
            row.update(energy_kwh=phase.energy.total, energy_kwh_gpu=phase.energy.gpu,
                       energy_kwh_cpu=phase.energy.cpu, energy_kwh_ram=phase.energy.ram)
        state["epoch"] = epoch
        if row["diverged"]:
            state["stop_reason"] = "diverged"
            row["is_best"] = False
        else:
            if any(p.grad is not None for p in model.parameters()):
                state["state_bytes"] = state_bytes(model, optimizer)
            # best validation AUC; a tie (AUC saturates on easy data) goes to the lower loss
            score = ((row["val_auc"], -row["val_loss"]) if selection_metric == "val_auc"
                     else (-row["val_loss"],))
            row["is_best"] = state["best_score"] is None or score > state["best_score"]
            if row["is_best"]:
                state.update(best_score=score, best_epoch=epoch, best_val_auc=row["val_auc"],
                             best_state=_cpu_state(model), bad_epochs=0,
                             time_to_best_s=state["train_time_s"])
            else:
                state["bad_epochs"] += 1
                if state["bad_epochs"] >= spec.patience:
                    state["stop_reason"] = "early_stopping"
        if state["stop_reason"] is None and epoch >= spec.epochs:
            state["stop_reason"] = "max_epochs"
        state["history"].append(row)
        log.info("epoch %d/%d: train_loss %s val_loss %s val_auc %s%s (%.2f s)", epoch, spec.epochs,
                 _fmt(row.get("train_loss")), _fmt(row.get("val_loss")), _fmt(row.get("val_auc")),
                 " *best*" if row["is_best"] else "", row["epoch_time_s"])
        state["peak"] = _max_peak(state["peak"], memory.read())
        _save(spec.checkpoint_path, state, model, optimizer, precision, fingerprint)
        if hooks.after_epoch is not None:
            hooks.after_epoch(epoch)

    state["peak"] = _max_peak(state["peak"], memory.read())
    test = _score_test(model, loaders["test"], precision, meter, state["best_state"])
    meter.stop()
    metrics = _finite(_metrics(spec, setting, precision, data, counts, state, test, selection_metric, meter))
    log.info("energy: %s %s", metrics["energy_source"], metrics["energy_detail"])
    write_csv(spec.epochs_path, pd.DataFrame(state["history"], columns=EPOCH_COLUMNS))
    write_json(spec.metrics_path, metrics)
    _retire_checkpoint(spec)
    log.info("done: test_auc %s, test_accuracy %s, %s epochs, %.1f s, %s kWh (%s), peak %.3f GB (%s)",
             _fmt(metrics["test_auc"]), _fmt(metrics["test_accuracy"]), metrics["epochs_run"],
             metrics["train_time_s"], _fmt(metrics["energy_kwh"]), metrics["energy_source"],
             metrics["peak_memory_gb"], metrics["memory_source"])
    return metrics


def _finite(value: Any) -> Any:
    """NaN/inf floats become None, so metrics.json holds null rather than invalid JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value: float | None) -> str:
    return "null" if value is None else f"{value:.4g}"


def _max_peak(old: dict | None, new: dict) -> dict:
    if old is None or new["peak_memory_gb"] >= old["peak_memory_gb"]:
        return new
    return old


def _save(path: str, state: dict, model, optimizer, precision: Precision, fingerprint: dict) -> None:
    payload = dict(state, fingerprint=fingerprint, model=model.state_dict(),
                   optimizer=optimizer.state_dict(), rng=ckpt.rng_states(),
                   scaler=precision.scaler.state_dict() if precision.scaler is not None else None)
    ckpt.save_checkpoint(path, payload)


def _retire_checkpoint(spec: RunSpec) -> None:
    """After success the checkpoint has done its job: delete it, or keep it as final.pt.

    Kept as final.pt, never as last.pt: a forced re-run must train again, not resume a finished run.
    """
    path = Path(spec.checkpoint_path)
    if not path.exists():
        return
    if spec.keep_checkpoint:
        path.replace(path.with_name("final.pt"))
    else:
        path.unlink()


def _score_test(model, loader, precision: Precision, meter: EnergyMeter,
                best_state: dict | None) -> dict[str, Any]:
    """Score the test set once with the best-validation weights, measuring time and energy."""
    if best_state is None:
        log.error("no epoch finished with finite losses: no weights to test; test metrics are null")
        return {"test_auc": None, "test_accuracy": None, "test_loss": None, "inference": None}
    model.load_state_dict(best_state)
    with meter.phase("inference") as phase:
        _sync(precision.device)
        start = time.perf_counter()
        try:
            probs, labels, loss = predict(model, loader, precision)
        except Diverged as err:
            log.error("test outputs not finite with the best weights (%s); test metrics are null", err)
            return {"test_auc": None, "test_accuracy": None, "test_loss": None, "inference": None}
        _sync(precision.device)
        seconds = time.perf_counter() - start
    inference = {
        "n_images": int(len(labels)),
        "batch_size": loader.batch_size,
        "time_s": seconds,
        "latency_ms_per_image": 1000 * seconds / max(len(labels), 1),
        "energy_kwh": phase.energy.total if phase.energy is not None else None,
    }
    return {"test_auc": auc_or_none(labels, probs), "test_accuracy": accuracy(labels, probs),
            "test_loss": loss, "inference": inference}


def _dtype(dtype: torch.dtype | None) -> str | None:
    return None if dtype is None else str(dtype).replace("torch.", "")


def _saved_activation_bytes(model: torch.nn.Module, dataset, batch_size: int,
                            precision: Precision) -> int | None:
    """Bytes autograd keeps for backward in one training forward pass of a full batch.

    The quantity act8 shrinks, and one that peak RSS hides on a CPU. Measured on a copy of the
    model with the RNG forked, so BatchNorm statistics and the random streams of the run (and
    therefore its results, resumed or not) are untouched.
    """
    from frugalmed.quant.measure import saved_tensor_bytes

    n = min(batch_size, len(dataset))
    if n == 0:
        return None
    images = torch.stack([dataset[i][0] for i in range(n)])
    images = images.to(precision.device, precision.weights_dtype)
    probe = copy.deepcopy(model).train()
    with torch.random.fork_rng(devices=[precision.device] if precision.device.type == "cuda" else []):
        with precision.autocast():
            measured = saved_tensor_bytes(probe, images)
    del probe
    return int(measured.activation_bytes)


def _metrics(spec: RunSpec, setting: Setting, precision: Precision, data, counts, state: dict,
             test: dict, selection_metric: str, meter: EnergyMeter) -> dict[str, Any]:
    device = precision.device
    history = state["history"]
    epochs_run = len(history)
    energy: Energy = state["energy"]
    have_energy = meter.tracker is not None
    diverged = state["stop_reason"] == "diverged"
    notes = []
    if diverged:
        notes.append("training diverged (non-finite loss or outputs) in epoch "
                     f"{history[-1]['epoch']}; test metrics use the best earlier epoch"
                     if state["best_state"] is not None else
                     "training diverged before any epoch finished; test metrics are null")
    if test["test_auc"] is None and test["test_accuracy"] is not None:
        notes.append("test split has one class only: AUC undefined")
    sources = meter.sources()
    return {
        "dataset": spec.dataset, "scale": spec.scale, "model": spec.model, "arch": spec.arch,
        "setting": spec.setting, "seed": spec.seed, "device": device.type,
        "test_auc": test["test_auc"], "test_accuracy": test["test_accuracy"],
        "test_loss": test["test_loss"],
        "best_val_auc": state["best_val_auc"], "best_epoch": state["best_epoch"],
        "selection_metric": selection_metric,
        "epochs_run": epochs_run, "stop_reason": state["stop_reason"], "diverged": diverged,
        "notes": notes,
        "train_time_s": state["train_time_s"],
        "time_per_epoch_s": state["train_time_s"] / epochs_run if epochs_run else None,
        "train_cpu_time_s": state.get("train_cpu_time_s"),
        "time_to_best_s": state.get("time_to_best_s"),
        "energy_kwh": energy.total if have_energy else None,
        "energy_kwh_gpu": energy.gpu if have_energy else None,
        "energy_kwh_cpu": energy.cpu if have_energy else None,
        "energy_kwh_ram": energy.ram if have_energy else None,
        **sources,
        **state["peak"],
        "state_bytes": state["state_bytes"] or {"params": None, "grads": None, "optimizer": None},
        "saved_activation_bytes": state.get("saved_activation_bytes"),
        "inference": test["inference"],
        "precision": {"weights_dtype": _dtype(precision.weights_dtype),
                      "autocast_dtype": _dtype(precision.autocast_dtype),
                      "grad_scaler": precision.scaler is not None, "setting": asdict(setting)},
        "data": {**counts, "image_size": data.image_size, "mean": data.mean, "std": data.std},
        "hyperparameters": {"epochs": spec.epochs, "batch_size": spec.batch_size, "lr": spec.lr,
                            "patience": spec.patience, "pretrained": spec.pretrained,
                            "model_kwargs": spec.model_kwargs},
        "sessions": state["sessions"],
        "environment": environment(device, spec.threads, spec.repo_dir),
    }
