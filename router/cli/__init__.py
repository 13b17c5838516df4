"""The ``supersub`` command line: argument parsing and one function per command.

Importing it loads neither torch, scikit-learn nor faiss; each command loads
what it needs when it runs.
"""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
