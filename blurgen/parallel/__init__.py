"""The parallel runner: joblib workers, results handed back through shared memory, bounded."""

from .runner import run_tasks

__all__ = ["run_tasks"]
