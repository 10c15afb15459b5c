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
from frugalmed.train.determinism import apply_determinism
from frugalmed.train.environment import environment, slurm_job
from frugalmed.train.evaluation import auc_by_group, auc_interval, prediction_table, write_predictions
from frugalmed.train.loop import (Diverged, LossHook, Precision, Progress, accuracy, auc_or_none,
                                  predict, train_epoch)
from frugalmed.train.measure.energy import Energy, EnergyMeter
from frugalmed.train.measure.gpu import gpu_info, nvml_gpu
from frugalmed.train.measure.host_load import GpuLoadSampler, HostLoad
from frugalmed.train.measure.memory import PeakMemory
from frugalmed.train.models import MLP_ARCH, build_model
from frugalmed.train.settings import Setting, get_setting
from frugalmed.train.state_bytes import state_bytes

log = logging.getLogger(__name__)

EPOCH_COLUMNS = [
    "epoch", "train_loss", "val_loss", "val_auc", "is_best", "epoch_time_s", "train_pass_s",
    "val_pass_s", "cpu_time_s", "energy_kwh", "energy_kwh_gpu", "energy_kwh_cpu", "energy_kwh_ram", "session",
    "diverged", "emissions_kg_co2eq", "cpu_other_share", "grad_scale",
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
    # train.pretrained: true -> the local file the rule fetch_pretrained_weights wrote
    hub_weights: str | None = None
    deterministic: bool = False
    exclusive: bool = False  # recorded: whether the workflow kept other jobs off this host
    confound_columns: list[str] = field(default_factory=list)
    predictions_path: str | None = None  # default: predictions.csv beside metrics.json
    bootstrap: int = 2000
    bootstrap_seed: int = 0
    progress_every_s: float = 60.0

    @property
    def predictions(self) -> str:
        return self.predictions_path or str(Path(self.metrics_path).with_name("predictions.csv"))


@dataclass
class Hooks:
    """Test seams: change a step's loss (force a NaN); act after an epoch (simulate a kill)."""

    loss: LossHook | None = None
    after_epoch: Callable[[int], None] | None = None
    grad_scaler: dict[str, Any] | None = None  # GradScaler options (gpu_check: short growth_interval)


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
            "batch_size", "lr", "patience", "pretrained", "deterministic")
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
    """Train, evaluate and write metrics.json, epochs.csv and predictions.csv; returns the metrics."""
    hooks = hooks or Hooks()
    setting = get_setting(spec.setting)
    torch.set_num_threads(spec.threads)
    determinism = apply_determinism(spec.deterministic)
    device = choose_device(spec.use_gpu)
    gpu = nvml_gpu(device)
    # codecarbon's set-up (a subprocess and its TDP table) overlaps with loading data and building the model
    meter = EnergyMeter(spec.energy_country, gpu_ids=[gpu.index] if gpu is not None else None)
    meter.start_in_background()
    try:
        return _run(spec, hooks, setting, determinism, device, gpu, meter)
    finally:
        meter.stop()  # also when the run fails: no tracker thread outlives it


def _run(spec: RunSpec, hooks: Hooks, setting: Setting, determinism: dict, device: torch.device,
         gpu, meter: EnergyMeter) -> dict[str, Any]:
    num_workers = spec.num_workers if spec.num_workers is not None else max(spec.threads - 1, 0)
    log.info("run %s/s%s/%s/%s/seed%s on %s (%s threads, %s loader workers, deterministic %s)",
             spec.dataset, spec.scale, spec.model, spec.setting, spec.seed, device, spec.threads,
             num_workers, spec.deterministic)
    slurm = slurm_job()
    if spec.exclusive and slurm is not None and slurm.get("oversubscribe") not in (None, "NO"):
        log.warning("train.exclusive is true but SLURM job %s may share its node (OverSubscribe=%s):"
                    " pass --exclusive (see docs/slurm.md); host_load records what others used",
                    slurm["job_id"], slurm["oversubscribe"])

    data = load_splits(spec.manifest, spec.images)
    counts = data.counts()
    log.info("data: %s, %d px", counts, data.image_size)
    val_single_class = counts["val"]["positives"] in (0, counts["val"]["n"])
    selection_metric = "val_loss" if val_single_class else "val_auc"
    if val_single_class:
        log.warning("validation split has one class only: AUC undefined, selecting by val_loss")

    notes: list[str] = []
    pretrained = spec.pretrained
    if pretrained is True and spec.arch == MLP_ARCH:
        pretrained = False
        notes.append("train.pretrained is true but the MLP has no pretrained weights: trained "
                     "from scratch (as the original study's MLP baseline)")
        log.info(notes[-1])
    ckpt.seed_everything(spec.seed)
    model = build_model(spec.arch, spec.model_kwargs, data.image_size, pretrained,
                        config_key=f"models.{spec.model}", hub_weights=spec.hub_weights)
    if setting.quantize_activations:
        from frugalmed.quant.act8 import quantize_model

        model = quantize_model(model)
    precision = Precision.for_setting(setting, device, hooks.grad_scaler)
    initial_scale = precision.scaler.get_scale() if precision.scaler is not None else None
    model = model.to(device=device, dtype=precision.weights_dtype)
    optimizer = make_optimizer(setting, model.parameters(), spec.lr)
    pin = device.type == "cuda"

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
    state.setdefault("initial_grad_scale", initial_scale)
    if "saved_activation_bytes" not in state:
        saved = _saved_activation_bytes(model, data.datasets["train"], spec.batch_size, precision)
        state["saved_activation_bytes"] = None if saved is None else int(saved.activation_bytes)
        state["autocast_weight_copy_bytes"] = (None if saved is None
                                               else int(saved.autocast_weight_copy_bytes))

    # the GPU as training starts (this process's CUDA context exists: the model is on it)
    gpu_record = gpu_info(device, gpu).as_dict() if device.type == "cuda" else None
    host_load = HostLoad()
    host_load.restore(state.get("host_load"))
    if gpu is not None:
        host_load.attach_gpu(GpuLoadSampler(gpu.nvml, gpu.handle))
    memory = PeakMemory(device)
    memory.reset()

    try:
        _train_epochs(spec, hooks, data, model, optimizer, precision, meter, memory, host_load,
                      state, session, fingerprint, selection_metric, num_workers, pin)
    finally:
        host_load.close()

    state["peak"] = _max_peak(state["peak"], memory.read())
    test_loader = make_loader(data.datasets["test"], spec.batch_size, num_workers, pin_memory=pin)
    test = _score_test(model, test_loader, precision, meter, state["best_state"])
    predictions = prediction_table(data.manifest, data.rows("test"), test.pop("probs"))
    evaluation = {**auc_interval(predictions, spec.bootstrap, spec.bootstrap_seed)}
    evaluation["test_auc_by_group"], group_notes = auc_by_group(predictions, data.manifest,
                                                                spec.confound_columns)
    notes += group_notes
    metrics = _finite(_metrics(spec, setting, precision, data, counts, state, test, selection_metric,
                               meter, notes, evaluation, host_load, determinism,
                               environment(device, spec.threads, spec.repo_dir, gpu=gpu_record,
                                           slurm=slurm)))
    log.info("energy: %s %s", metrics["energy_source"], metrics["energy_detail"])
    log.info("host load: %s", metrics["host_load"])
    write_predictions(spec.predictions, predictions)
    write_csv(spec.epochs_path, pd.DataFrame(state["history"], columns=EPOCH_COLUMNS))
    write_json(spec.metrics_path, metrics)
    _retire_checkpoint(spec)
    log.info("done: test_auc %s %s, test_accuracy %s, %s epochs, %.1f s, %s kWh (%s), peak %.3f GB (%s)",
             _fmt(metrics["test_auc"]), metrics["test_auc_ci"], _fmt(metrics["test_accuracy"]),
             metrics["epochs_run"], metrics["train_time_s"], _fmt(metrics["energy_kwh"]),
             metrics["energy_source"], metrics["peak_memory_gb"], metrics["memory_source"])
    return metrics


def _train_epochs(spec: RunSpec, hooks: Hooks, data, model, optimizer, precision: Precision,
                  meter: EnergyMeter, memory: PeakMemory, host_load: HostLoad, state: dict,
                  session: int, fingerprint: dict, selection_metric: str, num_workers: int,
                  pin: bool) -> None:
    """The epochs: train, validate, select, stop early; a checkpoint after each epoch."""
    device = precision.device
    val_loader = make_loader(data.datasets["val"], spec.batch_size, num_workers, pin_memory=pin)
    while state["stop_reason"] is None and state["epoch"] < spec.epochs:
        epoch = state["epoch"] + 1
        row: dict[str, Any] = {"epoch": epoch, "session": session, "diverged": False}
        progress = Progress(spec.progress_every_s, f"epoch {epoch}/{spec.epochs}: ", log.info)
        with meter.phase("epoch") as phase:
            _sync(device)
            host_load.begin()
            start, cpu_start = time.perf_counter(), time.process_time()
            try:
                shuffle = make_loader(data.datasets["train"], spec.batch_size, num_workers,
                                      shuffle_seed=spec.seed * 100_003 + epoch, pin_memory=pin)
                row["train_loss"] = train_epoch(model, shuffle, optimizer, precision, hooks.loss,
                                                progress)
                _sync(device)
                mid = time.perf_counter()
                probs, labels, row["val_loss"] = predict(model, val_loader, precision)
                row["val_auc"] = auc_or_none(labels, probs)
            except Diverged as err:
                log.error("epoch %d: diverged (%s); stopping", epoch, err)
                row["diverged"] = True
                mid = time.perf_counter()
            _sync(device)
            end, cpu_end = time.perf_counter(), time.process_time()
            row["cpu_other_share"] = host_load.end()
        if precision.scaler is not None:  # one host read per epoch, outside the timed passes
            row["grad_scale"] = float(precision.scaler.get_scale())
        row.update(epoch_time_s=end - start, train_pass_s=mid - start, val_pass_s=end - mid,
                   cpu_time_s=cpu_end - cpu_start)
        state["train_time_s"] += end - start
        state["train_cpu_time_s"] = state.get("train_cpu_time_s", 0.0) + cpu_end - cpu_start
        state["host_load"] = host_load.state()
        if phase.energy is not None:
            state["energy"] = state["energy"] + phase.energy
            row.update(energy_kwh=phase.energy.total, energy_kwh_gpu=phase.energy.gpu,
                       energy_kwh_cpu=phase.energy.cpu, energy_kwh_ram=phase.energy.ram,
                       emissions_kg_co2eq=phase.energy.co2_kg)
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
        log.info("epoch %d/%d: train_loss %s val_loss %s val_auc %s%s (%.2f s, others used %s of the host's CPU)",
                 epoch, spec.epochs, _fmt(row.get("train_loss")), _fmt(row.get("val_loss")),
                 _fmt(row.get("val_auc")), " *best*" if row["is_best"] else "", row["epoch_time_s"],
                 "?" if row["cpu_other_share"] is None else f"{row['cpu_other_share']:.0%}")
        state["peak"] = _max_peak(state["peak"], memory.read())
        _save(spec.checkpoint_path, state, model, optimizer, precision, fingerprint)
        if hooks.after_epoch is not None:
            hooks.after_epoch(epoch)


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
    """Score the test set once with the best-validation weights, measuring time and energy.

    `probs` (None without weights to test) are in the test loader's order: manifest order.
    """
    nothing = {"test_auc": None, "test_accuracy": None, "test_loss": None, "inference": None,
               "probs": None}
    if best_state is None:
        log.error("no epoch finished with finite losses: no weights to test; test metrics are null")
        return nothing
    model.load_state_dict(best_state)
    with meter.phase("inference") as phase:
        _sync(precision.device)
        start = time.perf_counter()
        try:
            probs, labels, loss = predict(model, loader, precision)
        except Diverged as err:
            log.error("test outputs not finite with the best weights (%s); test metrics are null", err)
            return nothing
        _sync(precision.device)
        seconds = time.perf_counter() - start
    inference = {
        "n_images": int(len(labels)),
        "batch_size": loader.batch_size,
        "time_s": seconds,
        "latency_ms_per_image": 1000 * seconds / max(len(labels), 1),
        "energy_kwh": phase.energy.total if phase.energy is not None else None,
        "emissions_kg_co2eq": phase.energy.co2_kg if phase.energy is not None else None,
    }
    return {"test_auc": auc_or_none(labels, probs), "test_accuracy": accuracy(labels, probs),
            "test_loss": loss, "inference": inference, "probs": probs}


def _dtype(dtype: torch.dtype | None) -> str | None:
    return None if dtype is None else str(dtype).replace("torch.", "")


def _saved_activation_bytes(model: torch.nn.Module, dataset, batch_size: int,
                            precision: Precision):
    """What autograd keeps for backward in one training forward pass of a full batch.

    The quantity act8 shrinks, and one that peak RSS hides on a CPU. Measured on a copy of the
    model with the RNG forked, so BatchNorm statistics and the random streams of the run (and
    therefore its results, resumed or not) are untouched. Returns frugalmed.quant's SavedBytes
    (activations, and autocast's weight copies apart), or None for an empty training split.
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
    return measured


def _tensor_memory(state: dict) -> int | None:
    """params + grads + optimizer state + saved activations, each measured from tensors."""
    parts = state.get("state_bytes") or {}
    values = [parts.get("params"), parts.get("grads"), parts.get("optimizer"),
              state.get("saved_activation_bytes")]
    return None if any(v is None for v in values) else int(sum(values))


def _metrics(spec: RunSpec, setting: Setting, precision: Precision, data, counts, state: dict,
             test: dict, selection_metric: str, meter: EnergyMeter, notes: list[str],
             evaluation: dict, host_load: HostLoad, determinism: dict,
             env: dict) -> dict[str, Any]:
    device = precision.device
    history = state["history"]
    epochs_run = len(history)
    energy: Energy = state["energy"]
    have_energy = meter.tracker is not None
    diverged = state["stop_reason"] == "diverged"
    notes = list(notes)
    if diverged:
        notes.append("training diverged (non-finite loss or outputs) in epoch "
                     f"{history[-1]['epoch']}; test metrics use the best earlier epoch"
                     if state["best_state"] is not None else
                     "training diverged before any epoch finished; test metrics are null")
    if test["test_auc"] is None and test["test_accuracy"] is not None:
        notes.append("test split has one class only: AUC undefined")
    sources = meter.sources()
    peak = state["peak"]
    return {
        "dataset": spec.dataset, "scale": spec.scale, "model": spec.model, "arch": spec.arch,
        "setting": spec.setting, "seed": spec.seed, "device": device.type,
        "test_auc": test["test_auc"], **evaluation, "test_accuracy": test["test_accuracy"],
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
        "emissions_kg_co2eq": energy.co2_kg if have_energy else None,
        "emissions_source": (f"codecarbon offline: energy_kwh x the average carbon intensity of "
                             f"{spec.energy_country}'s electricity (train.energy_country)"
                             if have_energy else None),
        **sources,
        "host_load": host_load.summary(),
        "exclusive": spec.exclusive,
        **peak,
        "cuda_max_allocated_bytes": peak.get("cuda_max_allocated_bytes"),
        "tensor_memory_bytes": _tensor_memory(state),
        "state_bytes": state["state_bytes"] or {"params": None, "grads": None, "optimizer": None},
        "saved_activation_bytes": state.get("saved_activation_bytes"),
        "autocast_weight_copy_bytes": state.get("autocast_weight_copy_bytes"),
        "inference": test["inference"],
        "precision": {"weights_dtype": _dtype(precision.weights_dtype),
                      "autocast_dtype": _dtype(precision.autocast_dtype),
                      "grad_scaler": precision.scaler is not None,
                      "grad_scale_initial": state.get("initial_grad_scale"),
                      "grad_scale_final": history[-1].get("grad_scale") if history else None,
                      "setting": asdict(setting)},
        "deterministic": spec.deterministic,
        "determinism": determinism,
        "data": {**counts, "image_size": data.image_size, "mean": data.mean, "std": data.std},
        "hyperparameters": {"epochs": spec.epochs, "batch_size": spec.batch_size, "lr": spec.lr,
                            "patience": spec.patience, "pretrained": spec.pretrained,
                            "pretrained_weights": spec.hub_weights if spec.pretrained is True else (
                                spec.pretrained or None),
                            "model_kwargs": spec.model_kwargs},
        "sessions": state["sessions"],
        "environment": env,
    }
