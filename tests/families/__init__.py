"""Tests of `smoothie_jax.families`, one file per module (a package: its basenames may
repeat those of other test folders)."""
