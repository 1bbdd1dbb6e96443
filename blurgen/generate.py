"""The generation loop every source shares: ordered tasks, parallel rendering, resumable shard writing."""

from dataclasses import dataclass

from joblib import Parallel, delayed
from tqdm import tqdm

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
    return Parallel(n_jobs=workers, return_as="generator")(delayed(render)(t) for t in tasks)


def generate(out, source, config, splits, render, *, shard_size=256, workers=1, keep_frames=False,
             compression="lzf"):
    """Render ``splits`` (name -> ordered task list) into shards in ``out``; returns the manifest.

    ``render(task)`` gives a sample dict, a list of them, or :class:`Skipped`. A rerun after a kill
    renders only the tasks after the last complete shard.
    """
    with ShardWriter(out, source, config, shard_size=shard_size, keep_frames=keep_frames,
                     compression=compression) as writer:
        for split, tasks in splits.items():
            if writer.split_state(split)["complete"]:
                continue
            start = writer.tasks_done(split)
            results = run_tasks(render, tasks[start:], workers)
            for task, result in enumerate(tqdm(results, desc=f"{source} {split}", total=len(tasks),
                                               initial=start, unit="task"), start):
                if isinstance(result, Skipped):
                    writer.skip(split, task, result.reason)
                else:
                    writer.add(split, task, result if isinstance(result, list) else [result])
            writer.finish_split(split, len(tasks))
        return writer.manifest
