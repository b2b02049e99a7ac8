"""Tests of `smoothie_jax.eval`, one file per module (a package: its basenames may repeat
those of the top-level tests, e.g. test_families.py)."""
