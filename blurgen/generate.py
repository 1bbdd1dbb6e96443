"""The generation loop every source shares: ordered tasks, parallel rendering, resumable shard writing."""

import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .parallel import task_runner
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
    out: str | Path,
    source: str,
    config: dict,
    splits: dict[str, list],
    render: Callable,
    *,
    shard_size: int = 256,
    workers: int = 1,
    scheduler: str | None = None,
    part: tuple[int, int] | None = None,
    keep_frames: bool = False,
    compression: str | None = "lzf",
    label: Callable | None = None,
    label_batch: int = 1,
    extra_fields: tuple[str, ...] = (),
) -> dict:
    """Render ``splits`` (name -> ordered task list) into shards in ``out``; returns the manifest.

    ``render(task)`` gives a sample dict, a list of them, or :class:`Skipped`. A rerun after a kill
    renders only the tasks after the last complete shard, and first makes again any listed shard that
    is missing or fails its checksum. With ``label``, render results go through
    ``label(list of up to label_batch results) -> as many results`` in this process before writing
    (e.g. a flow network on the GPU fed by CPU workers). ``extra_fields``: the optional shard fields
    (``sharp``, ``moving``) every sample of this source holds. Tasks run in ``workers`` joblib processes,
    or on the Dask cluster ``scheduler`` names (:func:`blurgen.parallel.task_runner`). ``part=(i, N)``
    makes only the i-th of N slices of every split, for `blurgen merge` to join.
    """
    with (
        task_runner(workers, scheduler) as run,  # a bad choice fails before the folder is touched
        ShardWriter(
            out,
            source,
            config,
            shard_size=shard_size,
            keep_frames=keep_frames,
            compression=compression,
            extra_fields=extra_fields,
            part=part,
        ) as writer,
    ):

        def results(tasks):
            if label is None:
                return run(render, tasks)
            return _labelled(run(render, tasks, ahead=max(label_batch, 8 * workers)), label, label_batch)

        writer.plan(splits)
        for entry in writer.damaged():  # listed but missing or corrupt: made again from its task range
            tasks = splits[entry["split"]][entry["task_start"] : entry["task_end"]]
            print(f"{Path(out) / entry['file']}: missing or damaged; making it again", file=sys.stderr)
            made = results(tasks)
            writer.remake(
                entry,
                (
                    (t, None if isinstance(r, Skipped) else r if isinstance(r, list) else [r])
                    for t, r in enumerate(made, entry["task_start"])
                ),
            )
        for split, tasks in splits.items():
            if writer.split_state(split)["complete"]:
                continue
            first, end = writer.task_range(len(tasks))
            start = writer.tasks_done(split)
            made = tqdm(
                results(tasks[start:end]),
                desc=f"{source} {split}",
                total=end - first,
                initial=start - first,
                unit="task",
            )
            for task, result in enumerate(made, start):
                if isinstance(result, Skipped):
                    writer.skip(split, task, result.reason)
                else:
                    writer.add(split, task, result if isinstance(result, list) else [result])
            writer.finish_split(split, end)
        return writer.manifest
