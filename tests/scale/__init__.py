"""Tests of `smoothie_jax.scale`, one file per module (a package: its basenames may
repeat those of other test folders)."""
