"""Checks a shard directory against its manifest and the schema; lists every problem found."""

import json
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from . import manifest as mf
from .format import ALL_FIELDS, FIELDS, MASK_FIELDS


def verify_shard(path: Path, entry: dict, version: int) -> list[str]:
    """Problems of one shard file of a format ``version`` folder as strings (empty when it is sound)."""
    if not path.is_file():
        return ["missing file"]
    key, digest = mf.checksum(path, version)
    if entry.get(key) != digest:
        return [f"{key} differs from the manifest (corrupt or modified)"]
    problems = []
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != mf.FORMAT or int(f.attrs.get("version", -1)) != version:
                problems.append(f"attributes do not name b2f-shards version {version} as the manifest does")
            n, h, w = entry["samples"], entry["H"], entry["W"]
            for name, (dtype, ch) in ALL_FIELDS.items():
                if name not in f:
                    if name in FIELDS:
                        problems.append(f"dataset '{name}' missing")
                    continue
                ds = f[name]
                want = (n, h, w) + ((ch,) if ch else ())
                if ds.shape != want or ds.dtype != dtype:
                    problems.append(f"'{name}' is {ds.dtype}{list(ds.shape)}, expected {np.dtype(dtype)}{list(want)}")
                    continue
                for i in range(n):  # a sample at a time: bounded memory whatever the shard size
                    a = ds[i]
                    if name.startswith("flow") and not np.isfinite(a).all():
                        problems.append(f"'{name}' of sample {i} has NaN/Inf")
                        break
                    if name in MASK_FIELDS and a.max(initial=0) > 1:
                        problems.append(f"'{name}' of sample {i} holds values other than 0/1")
                        break
            if "meta" not in f or f["meta"].shape != (n,):
                problems.append("'meta' missing or of the wrong length")
            else:
                for i, m in enumerate(f["meta"]):
                    try:
                        json.loads(m)
                    except ValueError:
                        problems.append(f"'meta' of sample {i} is not JSON")
                        break
    except OSError as e:
        problems.append(f"unreadable HDF5 ({e})")
    return problems


def verify(root: str | Path, progress: Callable | None = None) -> dict[str, list[str]]:
    """``{file: [problems]}`` for every bad shard in ``root`` (empty when all are sound); whether the
    folder is complete is :func:`manifest.incomplete`'s question."""
    root = Path(root)
    manifest = mf.load(root)
    entries = manifest["shards"]
    bad = {}
    for entry in progress(entries) if progress else entries:
        problems = verify_shard(root / entry["file"], entry, manifest["version"])
        if problems:
            bad[entry["file"]] = problems
    return bad
