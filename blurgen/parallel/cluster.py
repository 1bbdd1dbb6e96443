"""Where a run's tasks go: this process, joblib workers on this host (``workers``), or a Dask cluster
(``scheduler``: an address, ``local:N`` for a LocalCluster of N processes, or $BLURGEN_SCHEDULER).

The one place that chooses; :func:`blurgen.generate.generate` asks it for a runner once per run.
Dask returns results in task order and bounded: at most ``limit`` tasks are submitted and not yet
taken, so completed results wait on the workers, never in this process, however slow its consumer.
Results of workers on this host come back through the shared-memory handoff (:mod:`.handoff`);
a worker on another host finds no such folder and its result travels through Dask.
"""

import logging
import os
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import partial

from ..core.errors import BlurgenError
from .handoff import Sender, receive, shared_folder
from .runner import run_tasks

ENV = "BLURGEN_SCHEDULER"
LOCAL = "local:"


def resolve_scheduler(scheduler: str | None = None, workers: int = 1) -> str | None:
    """``scheduler``, else $BLURGEN_SCHEDULER, else None (joblib ``workers``); a malformed ``local:N``, or
    joblib workers asked for beside a scheduler, is refused."""
    value = scheduler if scheduler is not None else os.environ.get(ENV) or None
    if value is None:
        return None
    if value.startswith(LOCAL) and not (value[len(LOCAL) :].isdigit() and int(value[len(LOCAL) :]) >= 1):
        raise BlurgenError(f"--scheduler {value}: expected local:N with N >= 1 worker processes, or an address")
    if workers != 1:
        raise BlurgenError(
            f"--workers {workers} with --scheduler {value} (or ${ENV}): the cluster's workers run the tasks; "
            "drop --workers, or unset the scheduler to use joblib workers"
        )
    return value


def is_local(scheduler: str | None) -> bool:
    """Whether every task runs on this host: no scheduler, or ``local:N``."""
    return scheduler is None or scheduler.startswith(LOCAL)


@contextmanager
def task_runner(workers: int = 1, scheduler: str | None = None) -> Iterator[Callable]:
    """``run(render, tasks, ahead=None) -> results in task order`` for one run. A scheduler's address is
    reached at once (an unreachable one fails before anything is written); a ``local:N`` cluster starts
    at the first call, so a run with nothing left to do starts none. Closed when the run ends."""
    scheduler = resolve_scheduler(scheduler, workers)
    if scheduler is None:
        yield partial(run_tasks, workers=workers)
        return
    runner = DaskRunner(scheduler)
    try:
        if not is_local(scheduler):
            runner.connect()
        yield runner.run
    finally:
        runner.close()


class DaskRunner:
    """Ordered, bounded results of tasks run on a dask.distributed cluster."""

    def __init__(self, scheduler: str):
        self.scheduler, self.client, self.cluster = scheduler, None, None
        self._quiet = ExitStack()  # the in-process scheduler's INFO lines, up to the end of its close

    def connect(self) -> object:
        """The ``distributed.Client`` (this runner's LocalCluster starts on the first call)."""
        if self.client is not None:
            return self.client
        try:
            from distributed import Client, LocalCluster
            from distributed.utils import silence_logging_cmgr
        except ImportError:
            raise BlurgenError(
                f"--scheduler {self.scheduler} needs Dask: pip install 'blur2flow[dask]' (dask, distributed)"
            ) from None

        try:
            if self.scheduler.startswith(LOCAL):
                self._quiet.enter_context(silence_logging_cmgr(logging.ERROR))
                self.cluster = LocalCluster(
                    n_workers=int(self.scheduler[len(LOCAL) :]),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
                self.client = Client(self.cluster)
            else:
                self.client = Client(self.scheduler)  # waits distributed.comm.timeouts.connect (30 s)
        except OSError as e:  # includes distributed's TimeoutError on connecting
            self.close()
            raise BlurgenError(
                f"--scheduler {self.scheduler}: cannot reach a Dask scheduler ({e}); start one there "
                "(`dask scheduler`, `dask worker ADDRESS`) or pass local:N"
            ) from None
        return self.client

    def run(self, render: Callable, tasks: Sequence, ahead: int | None = None) -> Iterator:
        """Results of ``render(task)`` in task order; at most ``max(ahead, 2 × cluster threads)`` tasks
        submitted and not yet taken."""
        if not len(tasks):
            return iter(())
        return self._run(self.connect(), render, tasks, ahead)

    def _run(self, client, render, tasks, ahead):
        threads = sum(client.nthreads().values())
        limit = max(ahead or 0, 2 * threads, 2)
        run = uuid.uuid4().hex
        with shared_folder() as folder:  # read by workers on this host only
            send = Sender(render, folder)
            pending, todo = deque(), iter(enumerate(tasks))

            def submit():
                item = next(todo, None)
                if item is not None:
                    pending.append(client.submit(send, *item, key=f"blurgen-{run}-{item[0]}", pure=False))

            for _ in range(limit):
                submit()
            try:
                while pending:
                    result = pending.popleft().result()  # a lost worker's tasks are run again elsewhere
                    submit()
                    yield receive(result)
            finally:  # stopped early (an error, Ctrl-C): the cluster drops what is still queued
                client.cancel(list(pending))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self._quiet.close()
        self.client = self.cluster = None
