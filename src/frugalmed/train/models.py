"""Build a single-logit classifier for one-channel images: a timm architecture or an MLP."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from frugalmed.errors import ConfigError

log = logging.getLogger(__name__)

MLP_ARCH = "mlp"
DEFAULT_MLP_HIDDEN = (512, 128)


class MLP(nn.Module):
    """Fully connected baseline on the flattened image (the paper's non-convolutional reference)."""

    def __init__(self, image_size: int, hidden_sizes: Sequence[int] = DEFAULT_MLP_HIDDEN,
                 dropout: float = 0.0, in_chans: int = 1, num_classes: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_chans * image_size * image_size
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, int(hidden)), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = int(hidden)
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_model(arch: str, kwargs: Mapping[str, Any] | None, image_size: int,
                pretrained: bool | str = False, config_key: str = "models.<name>",
                hub_weights: str | Path | None = None) -> nn.Module:
    """A model taking (B, 1, image_size, image_size) and returning (B, 1) logits.

    `pretrained`: False; True (timm's hub weights, read from the local file `hub_weights`
    that the rule fetch_pretrained_weights wrote: never downloaded here); or a path to a local
    weights file. `config_key` names the model's config block in error messages.
    """
    kwargs = dict(kwargs or {})
    weights_file = _weights_file(pretrained)
    if pretrained is True and arch == MLP_ARCH:
        raise ConfigError("train.pretrained", "true means timm hub weights, which the MLP has none "
                          "of; use false or a path to a saved MLP state dict")
    if pretrained is True:
        from frugalmed.train.weights import require_weights

        if hub_weights is None:
            raise ConfigError("train.pretrained", f"true needs the fetched weights file of {arch} "
                              "(rule fetch_pretrained_weights); none was given to the job")
        hub_weights = require_weights(hub_weights, arch)
    try:
        if arch == MLP_ARCH:
            model = MLP(image_size, **kwargs)
        else:
            model = _build_timm(arch, kwargs, image_size, hub_weights if pretrained is True else None,
                                config_key)
    except TypeError as err:
        raise ConfigError(f"{config_key}.kwargs",
                          f"{arch} does not accept these options {kwargs}: {err}") from err
    _check_input_size(model, image_size, arch, config_key)
    if weights_file is not None:
        _load_strict(model, weights_file)
    return model


def _check_input_size(model: nn.Module, image_size: int, arch: str, config_key: str) -> None:
    """Fail before training when the architecture pools a small image down to nothing.

    Downsampled scales (e.g. 16 px) are smaller than many architectures' total stride; the
    error then names the model and the size instead of surfacing mid-epoch from a pooling layer.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, image_size, image_size))
    except RuntimeError as err:
        raise ConfigError(
            config_key,
            f"{arch} cannot take {image_size}x{image_size} px inputs ({err}); use a larger "
            "image_size / smaller scale for this model, or an architecture with less "
            "downsampling (e.g. fewer blocks via kwargs)",
        ) from err
    finally:
        model.train(was_training)


def _weights_file(pretrained: bool | str) -> Path | None:
    if isinstance(pretrained, bool) or pretrained is None:
        return None
    path = Path(pretrained)
    if not path.is_file():
        raise ConfigError(
            "train.pretrained",
            f"weights file '{path}' does not exist; give a path to a saved state dict, "
            "true (timm's hub weights, fetched once by the rule fetch_pretrained_weights) or false",
        )
    return path


def _build_timm(arch: str, kwargs: dict[str, Any], image_size: int, hub_weights: Path | None,
                config_key: str) -> nn.Module:
    """A timm model; with `hub_weights`, timm loads that local file as its pretrained weights
    (adapting channels, position embeddings and classifier as for a hub download)."""
    import timm

    if not timm.is_model(arch):
        raise ConfigError(f"{config_key}.arch", f"'{arch}' is neither 'mlp' nor a timm architecture")
    options: dict[str, Any] = {"in_chans": 1, "num_classes": 1}
    if hub_weights is not None:
        # source=None: never the hub, even for an architecture whose config names it
        options.update(pretrained=True,
                       pretrained_cfg_overlay={"file": str(hub_weights), "source": None})
    try:
        return _create_timm(timm, arch, image_size, options, kwargs)
    except RuntimeError as err:
        if hub_weights is None or "state_dict" not in str(err):
            raise
        raise ConfigError(
            "train.pretrained",
            f"the pretrained weights of {arch} ({hub_weights}) do not fit the model built with "
            f"{config_key}.kwargs {kwargs}: pretrained weights need the architecture's own "
            f"shape (set kwargs: null, or pretrained: false). timm said: {str(err)[:500]}",
        ) from err


def _create_timm(timm, arch: str, image_size: int, options: dict[str, Any],
                 kwargs: dict[str, Any]) -> nn.Module:
    if "img_size" not in kwargs:
        # Vision transformers and their kin fix the input size at construction; convnets
        # reject the argument. Try with it first, and without when the class refuses it.
        try:
            return timm.create_model(arch, img_size=image_size, **options, **kwargs)
        except TypeError as err:
            if "img_size" not in str(err):
                raise
    return timm.create_model(arch, **options, **kwargs)


def _load_strict(model: nn.Module, path: Path) -> None:
    """Load a saved state dict; every key and shape must match, with two known exceptions.

    As timm does for hub weights: a first conv saved for 3 channels is summed to 1 channel
    (timm.models.adapt_input_conv), and a classifier of another shape (e.g. ImageNet's 1000
    classes) is left at its fresh initialisation. Anything else that does not fit is an error.
    """
    from timm.models import adapt_input_conv, load_state_dict

    try:
        state = load_state_dict(str(path), use_ema=False)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user problem
        raise ConfigError("train.pretrained", f"cannot read weights file '{path}': {err}") from err
    own = model.state_dict()
    cfg = getattr(model, "pretrained_cfg", None) or {}
    first_conv = cfg.get("first_conv")
    classifiers = cfg.get("classifier") or ()
    classifiers = (classifiers,) if isinstance(classifiers, str) else tuple(classifiers)
    skipped, wrong = [], {}
    for key, value in list(state.items()):
        if key not in own or value.shape == own[key].shape:
            continue
        if first_conv and key == f"{first_conv}.weight" and value.ndim == 4 \
                and value.shape[0] == own[key].shape[0]:
            state[key] = adapt_input_conv(own[key].shape[1], value, base_chans=value.shape[1])
        elif any(key.startswith(f"{c}.") for c in classifiers):
            skipped.append(key)
            del state[key]
        else:
            wrong[key] = (tuple(value.shape), tuple(own[key].shape))
    if wrong:
        raise ConfigError("train.pretrained",
                          f"weights in '{path}' do not fit the model: shapes (file, model) {wrong}")
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k not in skipped]
    if missing or result.unexpected_keys:
        raise ConfigError(
            "train.pretrained",
            f"weights in '{path}' do not fit the model: missing keys {_few(missing)}, "
            f"unexpected keys {_few(result.unexpected_keys)} (is it saved from another architecture?)",
        )
    if skipped:
        log.info("classifier %s re-initialised: its shape differs from %s", skipped, path)
    log.info("loaded %d tensors from %s", len(state), path)


def _few(keys: Sequence[str], shown: int = 5) -> str:
    """A short listing of many keys, for error messages."""
    keys = list(keys)
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return f"{keys[:shown]}{more}"
