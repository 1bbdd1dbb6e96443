"""Import noisy third-party modules (ptlflow prints on import) without touching our stdout."""

import contextlib
import importlib
import logging
import sys
import warnings


def quiet_import(name):
    """Import module ``name`` with its prints sent to stderr and its import-time warnings hidden."""
    if name in sys.modules:
        return sys.modules[name]
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("ptlflow").setLevel(logging.WARNING)
        return importlib.import_module(name)
