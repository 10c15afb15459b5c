"""frugalmed: what resource-efficient training costs and saves for medical-imaging models."""

__version__ = "0.1.0"
