"""Streams samples into shards: one image size per shard, tiled chunks, atomic files, resumable runs.

Every split is a fixed, ordered list of tasks. A shard records the task range it consumed, so a rerun
starts after the last shard the manifest names and, rendering being deterministic per task, ends with
the same files as an uninterrupted run (HDF5 timestamps are off, so even the bytes match); a listed
shard that is missing or fails its checksum is made again from its task range (:meth:`ShardWriter.damaged`).

A folder is written by one run at a time: the writer holds an exclusive ``flock`` on ``.blurgen.lock``
in it (the kernel drops it when the process dies, so a killed run never leaves it stuck). It only ever
creates or deletes files of its own names (``manifest.json``, ``<split>-NNNNN.h5``, the lock and
``.blurgen-partial-*``) and refuses a non-empty folder that holds no manifest (a folder of the user's).
"""

import errno
import fcntl
import json
import os
import re
import sys
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import h5py
import numpy as np

from .. import __version__
from ..core.errors import BlurgenError, first_line
from . import manifest as mf
from .format import FIELDS, FRAME_FIELDS, MASK_FIELDS, OPTIONAL_FIELDS, OPTIONAL_SINCE

LOCK = ".blurgen.lock"
PARTIAL = ".blurgen-partial-"  # prefix of a shard being written; never listed in the manifest
LEGACY_PARTIAL = re.compile(r"\.\w+-\d{5}\.h5\.tmp")  # what writers before the lock named a shard being written
OWN_HIDDEN = (LOCK, ".manifest.partial.json")  # the lock, and the manifest's temporary name (atomic_path)
WRITER_KEYS = ("keep_frames", "shard_size")  # writer options stored in the config: they change what is written


def option_name(key: str) -> str:
    """The command-line spelling of a config key: ``max_disp`` -> ``--max-disp``."""
    return "--" + key.replace("_", "-")


def config_differences(stored: dict, given: dict) -> list[str]:
    """``--option: stored X, given Y`` for every key whose value differs, in key order."""
    keys = sorted(set(stored) | set(given))
    return [
        f"{option_name(k)}: {json.dumps(stored.get(k))} there, {json.dumps(given.get(k))} now"
        for k in keys
        if stored.get(k) != given.get(k)
    ]


def part_name(part: dict | None) -> str:
    """What a folder holds: ``part 1/4 of the task lists`` (an array job's), or ``the whole task lists``."""
    return "the whole task lists" if part is None else f"part {part['index']}/{part['of']} of the task lists"


def _holder(lock_file) -> str:
    lock_file.seek(0)
    text = lock_file.read().strip()
    pid, _, command = text.partition(" ")
    return f"pid {pid}: {command}" if pid.isdigit() else "another process"


def lock_folder(root: Path) -> TextIO:
    """The open lock file of ``root``, locked exclusively for this process; a BlurgenError naming the
    holder (pid and command line) when another run has it."""
    f = open(root / LOCK, "a+")  # noqa: SIM115 (held open for the writer's lifetime)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EACCES):
            f.close()
            raise
        holder = _holder(f)
        f.close()
        raise BlurgenError(
            f"{root}: another run is writing this folder ({holder}); wait for it to finish or pass another --out"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()} {' '.join(sys.argv)}\n")
    f.flush()
    return f


def _check_foreign(root: Path) -> None:
    """Refuse a folder that holds files of someone else's and no manifest: shards never go among them."""
    if (root / mf.NAME).exists():
        return
    foreign = sorted(p.name for p in root.iterdir() if p.name not in OWN_HIDDEN and not p.name.startswith(PARTIAL))
    if foreign:
        raise BlurgenError(
            f"{root}: not empty ({foreign[0]}{' …' if len(foreign) > 1 else ''}) and holds no manifest.json, "
            "so it is not a shard folder; pass a new or empty --out"
        )


@dataclass
class _Shard:
    """The open shard: its HDF5 file and datasets, looked up once (h5py's lookups are slow per sample)."""

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
        part: tuple[int, int] | None = None,
    ):
        """``extra_fields``: optional fields (format v3's ``sharp``, ``moving``) every sample of this source holds.
        ``part=(i, N)``: this folder holds only the i-th of N slices of every split (:func:`manifest.part_range`;
        an array job's task, joined by :func:`blurgen.shards.merge.merge`); the manifest records it.

        The stored config is ``config`` plus ``keep_frames`` and ``shard_size``; a rerun with any other
        value is refused naming the option. A folder made before those keys were stored goes on with
        its config as it is, its ``keep_frames`` read from its first shard.
        """
        self.root = Path(root)
        self.source = source
        self.shard_size, self.tile, self.compression = shard_size, tile, compression
        if part is not None and not 0 <= part[0] < part[1]:
            raise ValueError(f"part {part[0]}/{part[1]}: expected i/N with 0 <= i < N")
        self.part = None if part is None else {"index": part[0], "of": part[1]}
        unknown = sorted(set(extra_fields) - set(OPTIONAL_FIELDS))
        if unknown:
            raise ValueError(f"unknown optional shard field {unknown[0]}; known: {', '.join(OPTIONAL_FIELDS)}")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BlurgenError(
                f"{self.root}: cannot create the shard folder ({e.strerror}); pass another --out"
            ) from None
        _check_foreign(self.root)
        self._lock = lock_folder(self.root)
        try:
            for stale in self.root.glob(f"{PARTIAL}*"):  # left by a killed run; never part of the manifest
                stale.unlink()
            if (self.root / mf.NAME).exists():  # a shard folder: its older writer's partial shards are ours too
                for stale in self.root.glob(".*.h5.tmp"):
                    if LEGACY_PARTIAL.fullmatch(stale.name):
                        stale.unlink()
            self._open = None  # the _Shard being written
            self._pending_skips = []
            self._load(json.loads(json.dumps(config)), keep_frames)  # normalise tuples etc.
        except BaseException:
            self.close()
            raise
        # a folder begun in an older version goes on without the fields that version lacks
        extras = extra_fields if self.version >= OPTIONAL_SINCE else ()
        self.fields = {**FIELDS, **(FRAME_FIELDS if keep_frames else {}), **{k: OPTIONAL_FIELDS[k] for k in extras}}

    def _load(self, config, keep_frames):
        given = {**config, "keep_frames": keep_frames, "shard_size": self.shard_size}
        self.manifest = mf.load(self.root, missing_ok=True)
        if self.manifest is None:
            self.manifest, self.config = mf.new_manifest(self.source, given, __version__), given
            if self.part is not None:
                self.manifest["part"] = dict(self.part)
            self.version = self.manifest["version"]
            return
        stored = self.manifest["config"]
        there = self.manifest.get("part")
        if (there and {"index": there["index"], "of": there["of"]}) != self.part:
            raise BlurgenError(
                f"{self.root}: holds {part_name(there)}, not {part_name(self.part)} (--part); "
                "rerun with the stored --part, or pass a new --out"
            )
        if self.manifest["source"] != self.source:
            raise BlurgenError(
                f"{self.root}: holds shards made by another command or config (`blurgen {self.manifest['source']}`, "
                f"not {self.source}); pass a new --out folder (or delete this one) to start over"
            )
        older = not all(k in stored for k in WRITER_KEYS)
        diffs = config_differences(stored, config if older else given)
        if older and self.manifest["shards"]:
            first = self.root / self.manifest["shards"][0]["file"]
            if first.is_file():
                with h5py.File(first, "r") as f:
                    kept = "first" in f
                if kept != keep_frames:
                    said = {True: "given", False: "not given"}
                    diffs.append(f"--keep-frames: {said[kept]} there, {said[keep_frames]} now")
        if diffs:
            raise BlurgenError(
                f"{self.root}: holds shards made by another command or config ({'; '.join(diffs)}); rerun with "
                "the stored options, or pass a new --out folder (or delete this one) to start over"
            )
        self.config = stored
        self.version = self.manifest["version"]  # a resumed run goes on in its folder's own version

    # -- resume -------------------------------------------------------------------------------
    def split_state(self, split: str) -> dict:
        return self.manifest["splits"].setdefault(
            split, {"tasks_done": 0, "samples": 0, "complete": False, "skipped": []}
        )

    def tasks_done(self, split: str) -> int:
        """Index of the first task a (re)run must render for ``split``."""
        return self.split_state(split)["tasks_done"]

    def task_range(self, n: int) -> tuple[int, int]:
        """Tasks ``[a, b)`` of an ``n``-task split this folder holds: all, or its part's slice."""
        return (0, n) if self.part is None else mf.part_range(n, self.part["index"], self.part["of"])

    def plan(self, splits: dict) -> None:
        """Record every split's task count before any rendering, so an interrupted folder says what it
        lacks (``blurgen verify``) and its readers know it is incomplete; a rerun whose inputs give
        another count is refused. A part's splits start at its slice (``part_tasks``); it records the
        splits' order, which a merge keeps (one run writes them in that order)."""
        if self.part is not None:
            self.manifest["part"]["splits"] = list(splits)
        for split, tasks in splits.items():
            a, b = self.task_range(len(tasks))
            if self.part is not None and split not in self.manifest["splits"]:
                self.manifest["splits"][split] = {
                    "tasks_done": a,
                    "samples": 0,
                    "complete": False,
                    "skipped": [],
                    "part_tasks": [a, b],
                }
            state = self.split_state(split)
            if state.setdefault("tasks", len(tasks)) != len(tasks):
                raise BlurgenError(
                    f"{self.root}: split '{split}' was planned with {state['tasks']} tasks, the inputs now give "
                    f"{len(tasks)} (files added or removed?); restore them or pass a new --out"
                )
        self._save()

    def damaged(self) -> list[dict]:
        """Manifest entries whose file is missing or fails its checksum: a rerun makes them again."""
        bad = []
        for entry in self.manifest["shards"]:
            path = self.root / entry["file"]
            key, _ = mf.CHECKSUM[self.version]
            if not path.is_file() or mf.checksum(path, self.version)[1] != entry.get(key):
                bad.append(entry)
        return bad

    def remake(self, entry: dict, results: Iterable) -> None:
        """Write the shard ``entry`` again from ``results``, ``(task, sample list or None)`` for its task
        range, and update its checksum; the samples must be the ones it held (rendering is deterministic)."""
        with self._writing():
            self._start(entry["split"], entry["task_start"], entry["H"], entry["W"], name=entry["file"])
            shard = self._open
            for task, samples in results:
                for sample in samples or ():
                    if sample["blurred"].shape[:2] != (entry["H"], entry["W"]):
                        raise BlurgenError(
                            f"{self.root / entry['file']}: task {task} now renders another size; pass a new --out"
                        )
                    self._append(shard, task, sample)
            shard.file.close()
        self._open = None
        if shard.samples != entry["samples"]:
            shard.tmp.unlink(missing_ok=True)
            raise BlurgenError(
                f"{self.root / entry['file']}: remade with {shard.samples} samples, the manifest lists "
                f"{entry['samples']}; the inputs changed: pass a new --out"
            )
        os.replace(shard.tmp, self.root / shard.name)
        key, digest = mf.checksum(self.root / shard.name, self.version)
        entry[key] = digest
        self._save()

    # -- writing ------------------------------------------------------------------------------
    @contextmanager
    def _writing(self):
        """A full disk or a lost permission while writing a shard: one line naming the file."""
        try:
            yield
        except OSError as e:
            where = self._open.tmp if self._open is not None else self.root
            raise BlurgenError(
                f"{where}: cannot write the shard ({first_line(e)}); free space or fix permissions, "
                "then rerun the same command to go on"
            ) from None

    def add(self, split: str, task: int, samples: list[dict]) -> None:
        """Append the samples of one task; a shard closes only between tasks, so task ranges stay whole."""
        with self._writing():
            self._add(split, task, samples)

    def _add(self, split, task, samples):
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

    def skip(self, split: str, task: int, reason: str) -> None:
        """Record a task that produced no sample (dropped pair, unreadable file with --on-error skip)."""
        self._pending_skips.append({"task": task, "reason": reason})

    def finish_split(self, split: str, n_tasks: int) -> None:
        if self._open is not None:
            with self._writing():
                self._close(n_tasks)
        state = self.split_state(split)
        state["skipped"] += self._pending_skips
        self._pending_skips = []
        state.update(tasks_done=n_tasks, complete=True)
        self._save()

    def _start(self, split, task, h, w, name=None):
        if name is None:
            index = sum(1 for s in self.manifest["shards"] if s["split"] == split)
            name = f"{split}-{index:05d}.h5"
        tmp = self.root / f"{PARTIAL}{name}"
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
            # while halving crop reads and slowing 720p writes (bench/shards.py).
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
        self._save()

    def _save(self):
        try:
            mf.save(self.root, self.manifest)
        except OSError as e:
            raise BlurgenError(
                f"{self.root / mf.NAME}: cannot write the manifest ({e.strerror}); free space or fix "
                "permissions, then rerun the same command to go on"
            ) from None

    def close(self) -> None:
        """Drop the shard being written (only whole shards reach the manifest) and release the folder."""
        if getattr(self, "_open", None) is not None:
            try:
                self._open.file.close()
            except (OSError, RuntimeError):  # e.g. the disk filled while h5py flushed it
                pass
            self._open.tmp.unlink(missing_ok=True)
            self._open = None
        if getattr(self, "_lock", None) is not None:
            self._lock.close()  # closing the file releases the flock
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
