"""The generation loop every source shares: ordered tasks, parallel rendering, resumable shard writing."""

import itertools
import queue
import threading
from dataclasses import dataclass

from joblib import Parallel, delayed
from tqdm import tqdm

from .handoff import Sender, receive, shared_folder
from .shards.writer import ShardWriter


@dataclass
class Skipped:
    """What a render function returns for a task that yields no sample, with the reason recorded."""

    reason: str


def run_tasks(render, tasks, workers=1):
    """Results of ``render(task)`` in task order; ``workers`` processes (joblib, so a Dask or Ray
    backend set with ``joblib.parallel_config`` spreads the work over a cluster)."""
    if workers == 1:
        return map(render, tasks)
    return _parallel(render, tasks, workers)


def _parallel(render, tasks, workers):
    with shared_folder() as folder:  # sample arrays come back through shared memory
        send = render if folder is None else Sender(render, folder)
        for result in Parallel(n_jobs=workers, return_as="generator")(delayed(send)(t) for t in tasks):
            yield receive(result)


def run_bounded(render, tasks, workers, ahead):
    """:func:`run_tasks` for a slow consumer: joblib dispatches on completion, not on consumption, so
    workers would pile up results in memory; here a thread feeds them chunk by chunk of ``ahead``
    tasks into a queue of ``ahead`` results, so at most ~2*ahead wait and neither side idles early."""
    ready = queue.Queue(maxsize=ahead)

    def produce():
        try:
            for i in range(0, len(tasks), ahead):
                for result in run_tasks(render, tasks[i:i + ahead], workers):
                    ready.put((result,))
        except BaseException as e:  # handed to the consumer, which raises it
            ready.put(e)
        ready.put(None)

    threading.Thread(target=produce, daemon=True).start()
    while (item := ready.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item[0]


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
                results = _labelled(run_bounded(render, tasks[start:], workers, max(label_batch, 8 * workers)),
                                    label, label_batch)
            for task, result in enumerate(tqdm(results, desc=f"{source} {split}", total=len(tasks),
                                               initial=start, unit="task"), start):
                if isinstance(result, Skipped):
                    writer.skip(split, task, result.reason)
                else:
                    writer.add(split, task, result if isinstance(result, list) else [result])
            writer.finish_split(split, len(tasks))
        return writer.manifest
