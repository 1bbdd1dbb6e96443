"""Import noisy third-party modules (ptlflow prints on import) without touching our output."""

import contextlib
import importlib
import io
import logging
import sys
import types
import warnings


def quiet_import(name: str) -> types.ModuleType:
    """Import module ``name`` with its import-time prints and warnings discarded.

    ptlflow prints notices ("xFormers not available", "alt_cuda_corr is not compiled") to stdout and
    stderr on import; our commands promise clean stdout and a single line for an error.
    """
    if name in sys.modules:
        return sys.modules[name]
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        logging.getLogger("ptlflow").setLevel(logging.WARNING)
        return importlib.import_module(name)
