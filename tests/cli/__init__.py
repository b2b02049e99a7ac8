"""Tests of `smoothie_jax.cli`, one file per module (a package: its basenames may repeat
those of the top-level tests, e.g. test_route.py)."""
