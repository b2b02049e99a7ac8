"""Tests of `smoothie_jax.serve` and of its two commands, one file per module (a package:
its basenames may repeat those of the top-level tests)."""
