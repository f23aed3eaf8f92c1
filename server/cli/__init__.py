"""``flowai``: the command line (``main``), with the worker and credits commands beside it."""

from server.cli.main import main

__all__ = ["main"]
