"""Streams samples into shards: one image size per shard, tiled chunks, atomic files, resumable runs.

Every split is a fixed, ordered list of tasks. A shard records the task range it consumed, so a rerun
starts after the last shard the manifest names and, rendering being deterministic per task, ends with
the same files as an uninterrupted run (HDF5 timestamps are off, so even the bytes match).
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..core.errors import BlurgenError
from . import manifest as mf
from .format import FIELDS, FRAME_FIELDS, MASK_FIELDS, OPTIONAL_FIELDS, OPTIONAL_SINCE


@dataclass
class _Shard:
    """The open shard: its HDF5 file and datasets (looked up once: h5py's lookups cost ~1.5 ms a sample)."""

    split: str
    size: tuple  # H, W
    file: h5py.File
    datasets: dict
    tmp: Path
    name: str
    task_start: int
    samples: int = 0


class ShardWriter:
    """Write samples (dicts in the shard layout plus ``meta``) for tasks in order, split by split."""

    def __init__(
        self,
        root: str | os.PathLike,
        source: str,
        config: dict,
        shard_size: int = 256,
        keep_frames: bool = False,
        tile: tuple[int, int] = (64, 128),
        compression: str | None = "lzf",
        extra_fields: tuple[str, ...] = (),
    ):
        """``extra_fields``: optional fields (format v3's ``sharp``, ``moving``) every sample of this source holds."""
        self.root = Path(root)
        self.source, self.config = source, json.loads(json.dumps(config))  # normalise tuples etc.
        self.shard_size, self.tile, self.compression = shard_size, tile, compression
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(".*.tmp"):  # left by a killed run; never part of the manifest
            stale.unlink()
        self.manifest = mf.load(self.root, missing_ok=True)
        if self.manifest is None:
            self.manifest = mf.new_manifest(source, self.config, __version__)
        elif (self.manifest["source"], self.manifest["config"]) != (source, self.config):
            raise BlurgenError(
                f"{self.root}: holds shards made by another command or config; "
                "pass a new --out folder (or delete this one) to start over"
            )
        self.version = self.manifest["version"]  # a resumed run goes on in its folder's own version
        unknown = sorted(set(extra_fields) - set(OPTIONAL_FIELDS))
        if unknown:
            raise ValueError(f"unknown optional shard field {unknown[0]}; known: {', '.join(OPTIONAL_FIELDS)}")
        # a folder begun in an older version goes on without the fields that version lacks
        extras = extra_fields if self.version >= OPTIONAL_SINCE else ()
        self.fields = {**FIELDS, **(FRAME_FIELDS if keep_frames else {}), **{k: OPTIONAL_FIELDS[k] for k in extras}}
        self._open = None  # the _Shard being written
        self._pending_skips = []

    # -- resume -------------------------------------------------------------------------------
    def split_state(self, split):
        return self.manifest["splits"].setdefault(
            split, {"tasks_done": 0, "samples": 0, "complete": False, "skipped": []}
        )

    def tasks_done(self, split):
        """Index of the first task a (re)run must render for ``split``."""
        return self.split_state(split)["tasks_done"]

    # -- writing ------------------------------------------------------------------------------
    def add(self, split, task, samples):
        """Append the samples of one task; a shard closes only between tasks, so task ranges stay whole."""
        if len({s["blurred"].shape[:2] for s in samples}) > 1:
            raise BlurgenError(f"task {task} of split {split} mixes image sizes; a shard holds one size")
        for sample in samples:
            h, w = sample["blurred"].shape[:2]
            if self._open and (self._open.split != split or self._open.size != (h, w)):
                self._close(task)
            if self._open is None:
                self._start(split, task, h, w)
            self._append(self._open, task, sample)
        if self._open is not None and self._open.samples >= self.shard_size:
            self._close(task + 1)

    def _append(self, shard, task, sample):
        n = shard.samples
        for name, (dtype, _) in self.fields.items():
            arr = sample.get(name)
            if arr is None:
                raise BlurgenError(f"sample for task {task} lacks '{name}' (a source bug; please report it)")
            ds = shard.datasets[name]
            ds.resize(n + 1, axis=0)
            ds[n] = np.asarray(arr, dtype=dtype)
        shard.datasets["meta"].resize(n + 1, axis=0)
        shard.datasets["meta"][n] = json.dumps(sample.get("meta", {}), sort_keys=True)
        shard.samples = n + 1

    def skip(self, split, task, reason):
        """Record a task that produced no sample (dropped pair, unreadable file with --on-error skip)."""
        self._pending_skips.append({"task": task, "reason": reason})

    def finish_split(self, split, n_tasks):
        if self._open is not None:
            self._close(n_tasks)
        state = self.split_state(split)
        state["skipped"] += self._pending_skips
        self._pending_skips = []
        state.update(tasks_done=n_tasks, complete=True)
        mf.save(self.root, self.manifest)

    def _start(self, split, task, h, w):
        index = sum(1 for s in self.manifest["shards"] if s["split"] == split)
        name = f"{split}-{index:05d}.h5"
        tmp = self.root / f".{name}.tmp"
        # no chunk cache: every write fills whole chunks, so caching them only defers (and adds) work
        f = h5py.File(tmp, "w", track_order=False, rdcc_nbytes=0)
        for key, value in (
            ("format", mf.FORMAT),
            ("version", self.version),
            ("source", self.source),
            ("config", json.dumps(self.config, sort_keys=True)),
            ("split", split),
        ):
            f.attrs[key] = value
        # 64x128 tiles: a 256x256 crop reads ~1.8x its bytes (bench/shards.py), and a 720p sample
        # writes ~25% faster than with 64x64 (half the chunks)
        th, tw = min(self.tile[0], h), min(self.tile[1], w)
        datasets = {}
        for field, (dtype, ch) in self.fields.items():
            tail = (ch,) if ch else ()
            # Only masks are compressed: lzf shrinks them ~100x, but saves ~5-10% on flows and photos
            # while halving crop reads (bench/shards.py) and costing ~25 ms per 720p write.
            datasets[field] = f.create_dataset(
                field,
                shape=(0, h, w) + tail,
                maxshape=(None, h, w) + tail,
                dtype=dtype,
                chunks=(1, th, tw) + tail,
                track_times=False,
                compression=self.compression if field in MASK_FIELDS else None,
            )
        datasets["meta"] = f.create_dataset(
            "meta", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype("utf-8"), chunks=(64,), track_times=False
        )
        self._open = _Shard(split, (h, w), f, datasets, tmp, name, task)

    def _close(self, task_end):
        shard, self._open = self._open, None
        shard.file.close()
        os.replace(shard.tmp, self.root / shard.name)
        key, digest = mf.checksum(self.root / shard.name, self.version)
        self.manifest["shards"].append(
            {
                "file": shard.name,
                "split": shard.split,
                "samples": shard.samples,
                "H": shard.size[0],
                "W": shard.size[1],
                key: digest,
                "task_start": shard.task_start,
                "task_end": task_end,
            }
        )
        state = self.split_state(shard.split)
        state["samples"] += shard.samples
        state["tasks_done"] = task_end
        state["skipped"] += [s for s in self._pending_skips if s["task"] < task_end]
        self._pending_skips = [s for s in self._pending_skips if s["task"] >= task_end]
        mf.save(self.root, self.manifest)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # On an error the open shard stays a .tmp file: only whole shards ever reach the manifest.
        if self._open is not None:
            self._open.file.close()
            self._open.tmp.unlink(missing_ok=True)
            self._open = None
