"""How a training run's cost is measured: energy (codecarbon) and peak memory."""
