"""The generation loop every source shares: ordered tasks, parallel rendering, resumable shard writing."""

import itertools
import warnings
from dataclasses import dataclass

from joblib import Parallel, delayed
from tqdm import tqdm

from .handoff import Sender, receive, shared_folder, taken_count
from .shards.writer import ShardWriter


@dataclass
class Skipped:
    """What a render function returns for a task that yields no sample, with the reason recorded."""

    reason: str


def run_tasks(render, tasks, workers=1, ahead=None):
    """Results of ``render(task)`` in task order; ``workers`` processes (joblib, so a Dask or Ray
    backend set with ``joblib.parallel_config`` spreads the work over a cluster). For a slow consumer,
    ``ahead`` bounds the results waiting for it: joblib dispatches on completion, not consumption, so
    workers would otherwise pile them up. The bound holds for workers that share this machine's
    memory (see :class:`handoff.Sender`)."""
    if workers == 1:
        return map(render, tasks)
    return _parallel(render, tasks, workers, ahead)


def _parallel(render, tasks, workers, ahead):
    with shared_folder() as folder:  # sample arrays come back through shared memory
        taken = taken_count(folder, create=True)
        send = Sender(render, folder, ahead)
        results = Parallel(n_jobs=workers, return_as="generator", batch_size=1 if ahead else "auto")(
            delayed(send)(i, t) for i, t in enumerate(tasks))
        try:
            for result in results:
                taken[0] += 1
                yield receive(result)
        finally:  # stopped early (an error, Ctrl-C): joblib's "N tasks executed but not used" says nothing new
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                results.close()


def _labelled(results, label, batch):
    """``results`` with ``label(list of results) -> list of results`` applied ``batch`` at a time
    (Skipped ones pass through): the batched device step of a source, in the main process."""
    results = iter(results)
    while chunk := list(itertools.islice(results, batch)):
        keep = [i for i, r in enumerate(chunk) if not isinstance(r, Skipped)]
        for i, r in zip(keep, label([chunk[i] for i in keep])):
            chunk[i] = r
        yield from chunk


def generate(out, source, config, splits, render, *, shard_size=256, workers=1, keep_frames=False,
             compression="lzf", label=None, label_batch=1):
    """Render ``splits`` (name -> ordered task list) into shards in ``out``; returns the manifest.

    ``render(task)`` gives a sample dict, a list of them, or :class:`Skipped`. A rerun after a kill
    renders only the tasks after the last complete shard. With ``label``, render results go through
    ``label(list of up to label_batch results) -> as many results`` in this process before writing
    (e.g. a flow network on the GPU fed by CPU workers).
    """
    with ShardWriter(out, source, config, shard_size=shard_size, keep_frames=keep_frames,
                     compression=compression) as writer:
        for split, tasks in splits.items():
            if writer.split_state(split)["complete"]:
                continue
            start = writer.tasks_done(split)
            if label is None:
                results = run_tasks(render, tasks[start:], workers)
            else:
                results = _labelled(run_tasks(render, tasks[start:], workers, ahead=max(label_batch, 8 * workers)),
                                    label, label_batch)
            for task, result in enumerate(tqdm(results, desc=f"{source} {split}", total=len(tasks),
                                               initial=start, unit="task"), start):
                if isinstance(result, Skipped):
                    writer.skip(split, task, result.reason)
                else:
                    writer.add(split, task, result if isinstance(result, list) else [result])
            writer.finish_split(split, len(tasks))
        return writer.manifest
