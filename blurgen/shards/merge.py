"""Joining the folders of an array job (`--part i/N` runs) into the folder one run would have made.

Part i holds the contiguous slice :func:`manifest.part_range` of every split, and its shards record
task ranges in the whole list; so the parts' shards, one part after the other, cover each split in
task order, and the merged folder reads, verifies, resumes and trains as one run's does. Its samples
equal one run's in the same order; only the shard boundaries differ (a part's last shard may be short).
Shards are hard-linked (the parts stay untouched) or, with ``copy``, copied.
"""

import errno
import os
import shutil
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

from ..core.errors import BlurgenError
from . import manifest as mf
from .verify import verify
from .writer import config_differences, lock_folder

STAGING = ".blurgen-merge-"  # prefix of the folder a merge builds before renaming it to --out


def _load_part(root):
    manifest = mf.load(root)
    if "part" not in manifest:
        raise BlurgenError(f"{root}: a whole run's folder, not a part (made without --part i/N); merge only parts")
    return manifest


def _check_same_run(parts, manifests):
    first, ref = manifests[0], parts[0]
    for root, m in zip(parts[1:], manifests[1:]):
        diffs = [
            f"{what}: {there} there, {here} here"
            for what, there, here in (
                ("source", first["source"], m["source"]),
                ("format version", first["version"], m["version"]),
                ("parts", first["part"]["of"], m["part"]["of"]),
                (
                    "splits",
                    [(k, first["splits"][k].get("tasks")) for k in first["part"]["splits"]],
                    [(k, m["splits"][k].get("tasks")) for k in m["part"]["splits"]],
                ),
            )
            if there != here
        ]
        diffs += config_differences(first["config"], m["config"])
        if diffs:
            raise BlurgenError(
                f"{root}: made by another command or config than {ref} ({diffs[0]}); merge only the parts of one run"
            )


def _check_slices(parts, manifests):
    """Every slice 0..N-1 exactly once; returns the parts in slice order."""
    count = manifests[0]["part"]["of"]
    by_index = {}
    for root, m in zip(parts, manifests):
        i = m["part"]["index"]
        if i in by_index:
            raise BlurgenError(f"{root}: slice {i}/{count} given twice (also {by_index[i][0]}); pass each part once")
        by_index[i] = (root, m)
    missing = [i for i in range(count) if i not in by_index]
    if missing:
        raise BlurgenError(
            f"slice {missing[0]}/{count} missing ({len(missing)} of {count} parts absent); pass all {count} folders "
            f"of the run (made with --part 0/{count} … {count - 1}/{count})"
        )
    return [by_index[i] for i in range(count)]


def _check_part(root, manifest):
    lines = mf.incomplete(manifest)
    if lines:
        raise BlurgenError(f"{root}: incomplete part ({'; '.join(lines)}); rerun its command to finish it, then merge")
    index, count = manifest["part"]["index"], manifest["part"]["of"]
    for name, state in manifest["splits"].items():
        if state.get("part_tasks") != list(mf.part_range(state["tasks"], index, count)):
            raise BlurgenError(f"{root}: split '{name}' does not record slice {index}/{count}; remake this part")


def _check_out(out, parts, copy):
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BlurgenError(f"{out}: exists and is not an empty folder; pass a new --out")
    if copy:
        return
    device = os.stat(out.parent if out.parent.exists() else Path.cwd()).st_dev
    for root in parts:
        if os.stat(root).st_dev != device:
            raise BlurgenError(
                f"{root}: on another filesystem than --out {out}, where hard links cannot reach; "
                "pass --copy to copy the shards, or an --out on the same filesystem"
            )


def merge(
    parts: Sequence[str | os.PathLike], out: str | os.PathLike, copy: bool = False, progress: Callable | None = None
) -> dict:
    """Check the ``parts`` (complete, sound, the slices 0..N-1 of one run) and make ``out`` from them;
    returns its manifest. Nothing is written unless every check passes; ``out`` appears whole, by a
    rename. ``progress``: wraps each part's shard list while it is verified (a progress bar)."""
    parts, out = [Path(p) for p in parts], Path(out)
    manifests = [_load_part(p) for p in parts]
    _check_same_run(parts, manifests)
    ordered = _check_slices(parts, manifests)
    for root, m in ordered:
        _check_part(root, m)
    _check_out(out, parts, copy)
    with ExitStack() as locks:
        for root, _ in ordered:  # no run may rewrite a part while it is read
            locks.enter_context(lock_folder(root))
        for root, _ in ordered:
            bad = verify(root, progress)
            if bad:
                file, problems = next(iter(bad.items()))
                raise BlurgenError(f"{root / file}: {problems[0]}; rerun that part's command to remake it, then merge")
        return _write(ordered, out, copy)


def _write(ordered, out, copy):
    first = ordered[0][1]
    staging = out.parent / f"{STAGING}{out.name}"
    shutil.rmtree(staging, ignore_errors=True)  # left by a killed merge
    staging.mkdir(parents=True)
    try:
        shards, splits = [], {}
        for split in first["part"]["splits"]:  # in the order one run writes them
            states = [m["splits"][split] for _, m in ordered]
            for root, m in ordered:
                for entry in sorted((e for e in m["shards"] if e["split"] == split), key=lambda e: e["task_start"]):
                    name = f"{split}-{sum(e['split'] == split for e in shards):05d}.h5"
                    _place(root / entry["file"], staging / name, copy, first["version"], entry)
                    shards.append({**entry, "file": name})
            splits[split] = {
                "tasks": states[0]["tasks"],
                "tasks_done": states[0]["tasks"],
                "samples": sum(s["samples"] for s in states),
                "complete": True,
                "skipped": [skip for s in states for skip in s["skipped"]],
            }
        manifest = {k: v for k, v in first.items() if k != "part"} | {"splits": splits, "shards": shards}
        mf.save(staging, manifest)
        os.rename(staging, out)  # onto a missing or empty folder
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _place(src, dst, copy, version, entry):
    if not copy:
        try:
            os.link(src, dst)
        except OSError as e:
            hint = "another filesystem" if e.errno == errno.EXDEV else e.strerror
            raise BlurgenError(
                f"{src}: cannot hard-link it into --out ({hint}); pass --copy to copy the shards"
            ) from None
        return
    try:
        shutil.copyfile(src, dst)
    except OSError as e:
        raise BlurgenError(f"{dst}: cannot copy the shard ({e.strerror}); free space or fix permissions") from None
    key, digest = mf.checksum(dst, version)
    if digest != entry[key]:
        raise BlurgenError(f"{dst}: the copy differs from {src} (its checksum); check the disk and merge again")
