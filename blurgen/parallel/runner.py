"""Running a render function over ordered tasks: in this process, or in joblib workers whose results
come back in order through shared memory."""

import os
import warnings
from collections.abc import Callable, Iterator, Sequence

from joblib import Parallel, delayed

from .handoff import Sender, exit_with, receive, shared_folder, taken_count


def run_tasks(render: Callable, tasks: Sequence, workers: int = 1, ahead: int | None = None) -> Iterator:
    """Results of ``render(task)`` in task order; ``workers`` joblib processes on this host (a cluster
    goes through :mod:`.cluster`). For a slow consumer, ``ahead`` bounds the results waiting for it:
    joblib dispatches on completion, not consumption, so workers would otherwise pile them up (see
    :class:`handoff.Sender`)."""
    if workers == 1:
        return map(render, tasks)
    return _parallel(render, tasks, workers, ahead)


def _parallel(render, tasks, workers, ahead):
    with shared_folder() as folder:  # sample arrays come back through shared memory
        taken = taken_count(folder, create=True)
        send = Sender(render, folder, ahead)
        results = Parallel(
            n_jobs=workers,
            return_as="generator",
            batch_size=1 if ahead else "auto",
            initializer=exit_with,
            initargs=(os.getpid(),),
        )(delayed(send)(i, t) for i, t in enumerate(tasks))
        try:
            for result in results:
                taken[0] += 1
                yield receive(result)
        finally:  # stopped early (an error, Ctrl-C): joblib's "N tasks executed but not used" says nothing new
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                results.close()
