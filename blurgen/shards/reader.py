"""Random access to the samples of a shard directory, whole or as crops, from any number of processes."""

import bisect
import json
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from ..core.errors import BlurgenError
from . import manifest as mf
from .format import ALL_FIELDS, ARRAY_FIELDS


def sample_key(meta: dict) -> tuple:
    """(sequence, first frame, last frame) of a sample's meta: what names one window of one sequence across
    runs, so a labelled sample finds its exact-flow twin made from the same frames (``blurgen audit``)."""
    frames = meta.get("frames") or [None]
    return meta.get("sequence"), frames[0], frames[-1]


class ShardReader:
    """Samples of one split (or all) of a shard directory, indexed 0..len-1 in manifest order.

    Files open lazily, once per process, so a reader made in the main process can be handed to
    DataLoader workers (fork or spawn): each worker opens its own HDF5 handles.
    """

    def __init__(self, root: str | os.PathLike, split: str | None = None):
        self.root = Path(root)
        self.manifest = mf.load(self.root)
        shards = self.manifest["shards"]
        if split is not None:
            if split not in self.manifest["splits"]:
                raise BlurgenError(f"{self.root}: no split '{split}' (have: {', '.join(self.splits) or 'none'})")
            shards = [s for s in shards if s["split"] == split]
        self.shards = shards
        self.split = split
        self._starts = np.cumsum([0] + [s["samples"] for s in shards]).tolist()
        self._files, self._pid = {}, None

    @property
    def splits(self) -> list[str]:
        return list(self.manifest["splits"])

    def __len__(self):
        return self._starts[-1]

    def _locate(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"sample {index} out of range for {len(self)} samples in {self.root}")
        index %= len(self)
        k = bisect.bisect_right(self._starts, index) - 1
        return k, index - self._starts[k]

    def _file(self, k):
        if self._pid != os.getpid():  # forked: handles of the parent must not be shared
            self._files, self._pid = {}, os.getpid()
        if k not in self._files:
            path = self.root / self.shards[k]["file"]
            try:
                self._files[k] = h5py.File(path, "r")
            except OSError as e:
                raise BlurgenError(f"{path}: cannot open shard ({e}); run `blurgen verify {self.root}`") from None
        return self._files[k]

    def size(self, index: int) -> tuple[int, int]:
        """(H, W) of sample ``index``, from the manifest, without opening a file."""
        k, _ = self._locate(index)
        return self.shards[k]["H"], self.shards[k]["W"]

    def fields(self, index: int) -> list[str]:
        """Array fields stored for ``index`` (the frame fields only with --keep-frames)."""
        k, _ = self._locate(index)
        return [name for name in ALL_FIELDS if name in self._file(k)]

    def read(
        self,
        index: int,
        crop: tuple[int, int, int, int] | None = None,
        fields: Sequence[str] = ARRAY_FIELDS,
        meta: bool = True,
    ) -> dict:
        """Sample ``index`` as a dict of numpy arrays plus ``meta`` (parsed JSON; left out with ``meta=False``,
        as a training loader does, which reads only arrays).

        ``crop=(y, x, h, w)`` reads just that window: with spatial chunks this touches about the
        crop's own bytes, not the frame's.
        """
        k, i = self._locate(index)
        f = self._file(k)
        if crop is None:
            sl = (i,)
        else:
            y, x, h, w = crop
            H, W = self.shards[k]["H"], self.shards[k]["W"]
            if y < 0 or x < 0 or h <= 0 or w <= 0 or y + h > H or x + w > W:
                raise ValueError(f"crop {crop} outside the {H}x{W} sample {index}")
            sl = (i, slice(y, y + h), slice(x, x + w))
        out = {name: f[name][sl] for name in fields}
        if meta:
            out["meta"] = json.loads(f["meta"][i])
        return out

    def meta(self, index: int) -> dict:
        k, i = self._locate(index)
        return json.loads(self._file(k)["meta"][i])

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}

    def __getstate__(self):
        return {**self.__dict__, "_files": {}, "_pid": None}
