"""The `smoothie-jax` command: parses, calls one library function per command, prints."""

from ._main import main as main

__all__ = ["main"]
