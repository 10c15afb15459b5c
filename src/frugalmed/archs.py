"""Model architectures checked at planning time, without importing timm on every Snakemake start.

A misspelt `models.*.arch` used to fail inside every training job, after the data had been
prepared. Checking it while Snakemake plans needs timm's list of architectures, but importing
timm (and with it torch) takes seconds, more than the whole dry run. The list is therefore
cached per installed timm version (a text file under $FRUGALMED_CACHE_DIR, else
$XDG_CACHE_HOME/frugalmed or ~/.cache/frugalmed); only the first plan after installing a timm
version pays the import. If no cache can be written, the list is computed each time.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from frugalmed.errors import ConfigError

log = logging.getLogger(__name__)

MLP_ARCH = "mlp"  # frugalmed's own model (frugalmed.train.models), not timm's


def cache_dir() -> Path:
    if os.environ.get("FRUGALMED_CACHE_DIR"):
        return Path(os.environ["FRUGALMED_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "frugalmed"


def _list_timm_models() -> list[str]:
    import timm  # slow (imports torch): reached once per timm version

    return list(timm.list_models())


def timm_model_names() -> frozenset[str]:
    """Every architecture name the installed timm registers (what timm.is_model accepts)."""
    version = importlib.metadata.version("timm")
    cache = cache_dir() / f"timm-{version}-models.txt"
    try:
        return frozenset(cache.read_text().split())
    except OSError:
        pass
    names = _list_timm_models()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        partial.write_text("\n".join(sorted(names)) + "\n")
        os.replace(partial, cache)
    except OSError as err:
        log.info("cannot cache timm's model list at %s (%s); computing it each time", cache, err)
    return frozenset(names)


def check_model_archs(models: Mapping[str, Mapping[str, Any]],
                      known: Iterable[str] | None = None) -> None:
    """Raise ConfigError naming `models.<name>.arch` for an architecture timm does not know.

    `known` defaults to timm_model_names(); a pretrained tag (`name.tag`) is allowed, as
    timm.is_model allows it.
    """
    archs = {name: str(spec["arch"]) for name, spec in models.items()}
    if all(arch == MLP_ARCH for arch in archs.values()):
        return
    names = frozenset(timm_model_names() if known is None else known)
    for name, arch in archs.items():
        if arch == MLP_ARCH or arch.split(".", 1)[0] in names:
            continue
        close = difflib.get_close_matches(arch, sorted(names), n=3, cutoff=0.75)
        hint = (f"close names: {', '.join(close)}" if close
                else "timm.list_models('<pattern>') lists the names")  # fmt: skip
        raise ConfigError(
            f"models.{name}.arch",
            f"'{arch}' is neither '{MLP_ARCH}' nor an architecture of the installed timm "
            f"({len(names)} known): {hint}",
        )
