"""Pretrained (ImageNet) weights for `train.pretrained: true`, fetched once, loaded offline.

Compute nodes of clusters often have no internet, so training jobs never download: the local
rule `fetch_pretrained_weights` (runs where Snakemake runs, like the downloads) asks timm for
each configured architecture's default pretrained weights once, through timm's own hub
machinery (Hugging Face hub or URL, honouring HF_HOME / HF_HUB_OFFLINE), and saves them as
`{train.weights_dir}/{arch}.safetensors`, at the architecture's native shape (3 channels,
ImageNet's classifier). A training job hands that file to timm
(`pretrained_cfg_overlay={'file': ...}`), so timm adapts it exactly as for a hub download:
the first convolution summed to one channel, position embeddings resampled to the run's image
size, the classifier dropped for the run's single logit.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from frugalmed.atomic import atomic_path
from frugalmed.errors import FrugalmedError

log = logging.getLogger(__name__)

FETCH_RULE = "fetch_pretrained_weights"


def weights_path(weights_dir: str | Path, arch: str) -> Path:
    """Where the fetched weights of one architecture live."""
    return Path(weights_dir) / f"{arch}.safetensors"


def require_weights(path: str | Path, arch: str) -> Path:
    """The weights file, or an error saying which rule fetches it (never a download)."""
    path = Path(path)
    if not path.is_file():
        raise FrugalmedError(
            f"train.pretrained is true but the pretrained weights of '{arch}' are not at {path}. "
            f"Training jobs never download (compute nodes are often offline): fetch them once "
            f"where there is network with the local rule {FETCH_RULE}, e.g. "
            f"`snakemake --cores 1 {path}` (Snakemake runs it by itself before training), or "
            f"copy the file there from a machine that has it."
        )
    return path


def fetch_hub_weights(arch: str, out_path: str | Path) -> dict[str, int]:
    """Download (or take from the local hub cache) timm's default pretrained weights of `arch`
    and save them as safetensors; returns {tensors, bytes} for the log."""
    import timm
    from safetensors.torch import save_file

    if not timm.is_model(arch):
        raise FrugalmedError(f"'{arch}' is not a timm architecture; only timm models have hub "
                             "weights (the MLP trains from scratch)")
    try:
        model = timm.create_model(arch, pretrained=True)
    except Exception as err:  # noqa: BLE001 - network, missing cache entry, no weights: one message
        raise FrugalmedError(
            f"could not fetch timm's pretrained weights of '{arch}': {err!r}. This needs network "
            "access to the Hugging Face hub (or a local hub cache under HF_HOME); run it on a "
            "login node, or copy the weights file from a machine that has it"
        ) from err
    # clone: safetensors refuses tensors that share storage (tied weights)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(out_path) as tmp:
        save_file(state, str(tmp), metadata={"arch": arch, "source": _source(model)})
    size = sum(v.numel() * v.element_size() for v in state.values())
    log.info("saved %d tensors (%.1f MB) of %s to %s", len(state), size / 1e6, arch, out_path)
    return {"tensors": len(state), "bytes": size}


def _source(model: torch.nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return str(cfg.get("hf_hub_id") or cfg.get("url") or "unknown")
