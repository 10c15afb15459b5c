"""Snakemake script of rule `fetch_pretrained_weights` (frugalmed.train.weights)."""

from frugalmed.logs import log_to
from frugalmed.train.weights import fetch_hub_weights

log_to(snakemake.log[0])

fetch_hub_weights(snakemake.wildcards.arch, snakemake.output.weights)
