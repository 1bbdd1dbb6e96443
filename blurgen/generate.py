"""The generation loop every source shares: ordered tasks, parallel rendering, resumable shard writing."""

import itertools
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .parallel import run_tasks
from .shards.writer import ShardWriter


@dataclass
class Skipped:
    """What a render function returns for a task that yields no sample, with the reason recorded."""

    reason: str


@dataclass
class Made:
    """What a source's make-shards function did: the folder, its manifest and the task lists behind it."""

    out: Path
    manifest: dict
    splits: dict

    @property
    def samples(self) -> int:
        return sum(s["samples"] for s in self.manifest["splits"].values())


def _labelled(results, label, batch):
    """``results`` with ``label(list of results) -> list of results`` applied ``batch`` at a time
    (Skipped ones pass through): the batched device step of a source, in the main process."""
    results = iter(results)
    while chunk := list(itertools.islice(results, batch)):
        keep = [i for i, r in enumerate(chunk) if not isinstance(r, Skipped)]
        for i, r in zip(keep, label([chunk[i] for i in keep])):
            chunk[i] = r
        yield from chunk


def generate(
    out,
    source,
    config,
    splits,
    render,
    *,
    shard_size=256,
    workers=1,
    keep_frames=False,
    compression="lzf",
    label=None,
    label_batch=1,
    extra_fields=(),
):
    """Render ``splits`` (name -> ordered task list) into shards in ``out``; returns the manifest.

    ``render(task)`` gives a sample dict, a list of them, or :class:`Skipped`. A rerun after a kill
    renders only the tasks after the last complete shard. With ``label``, render results go through
    ``label(list of up to label_batch results) -> as many results`` in this process before writing
    (e.g. a flow network on the GPU fed by CPU workers). ``extra_fields``: the optional shard fields
    (``sharp``, ``moving``) every sample of this source holds.
    """
    with ShardWriter(
        out,
        source,
        config,
        shard_size=shard_size,
        keep_frames=keep_frames,
        compression=compression,
        extra_fields=extra_fields,
    ) as writer:
        for split, tasks in splits.items():
            if writer.split_state(split)["complete"]:
                continue
            start = writer.tasks_done(split)
            if label is None:
                results = run_tasks(render, tasks[start:], workers)
            else:
                results = _labelled(
                    run_tasks(render, tasks[start:], workers, ahead=max(label_batch, 8 * workers)), label, label_batch
                )
            for task, result in enumerate(
                tqdm(results, desc=f"{source} {split}", total=len(tasks), initial=start, unit="task"), start
            ):
                if isinstance(result, Skipped):
                    writer.skip(split, task, result.reason)
                else:
                    writer.add(split, task, result if isinstance(result, list) else [result])
            writer.finish_split(split, len(tasks))
        return writer.manifest
