"""The parallel runner: joblib workers or a Dask cluster, results handed back in order, bounded."""

from .cluster import ENV, is_local, resolve_scheduler, task_runner
from .runner import run_tasks

__all__ = ["ENV", "is_local", "resolve_scheduler", "run_tasks", "task_runner"]
