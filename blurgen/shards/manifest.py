"""manifest.json: what a shard directory holds; rewritten atomically so a kill never leaves half of one."""

import hashlib
import json
from pathlib import Path

import xxhash

from ..core.errors import BlurgenError
from ..core.files import atomic_write_text, file_digest

FORMAT = "b2f-shards"
VERSION = 3
NAME = "manifest.json"
# Each version's per-shard checksum. v2 is v1 with xxh3-128 for sha256: the shards' contents are the
# same, but sha256 cost the main process several times what xxh3 does (which mostly reads the page
# cache), and a checksum here guards against corruption, not forgery. v3 adds optional fields.
CHECKSUM = {1: ("sha256", hashlib.sha256), 2: ("xxh3_128", xxhash.xxh3_128), 3: ("xxh3_128", xxhash.xxh3_128)}


def checksum(path: str | Path, version: int = VERSION) -> tuple[str, str]:
    """(manifest key, hex digest) of the file at ``path`` for shard format ``version``."""
    key, algorithm = CHECKSUM[version]
    return key, file_digest(path, algorithm)


def new_manifest(source: str, config: dict, version: str) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "source": source,
        "config": config,
        "blurgen_version": version,
        "splits": {},
        "shards": [],
    }


def save(root: str | Path, manifest: dict) -> None:
    atomic_write_text(Path(root) / NAME, json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def load(root: str | Path, missing_ok: bool = False) -> dict | None:
    """Read and check ``root/manifest.json``; ``None`` if absent and ``missing_ok``."""
    path = Path(root) / NAME
    if not path.is_file():
        if missing_ok:
            return None
        hint = "; pass the folder that holds manifest.json" if Path(root).is_dir() else ""
        raise BlurgenError(
            f"{path}: no shard manifest here{hint} (make shards with `blurgen synthetic|monkaa|highspeed`)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BlurgenError(f"{path}: unreadable manifest ({e}); regenerate the shards") from None
    if manifest.get("format") != FORMAT:
        raise BlurgenError(f"{path}: not a {FORMAT} manifest")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > VERSION:
        raise BlurgenError(
            f"{path}: shard format version {manifest.get('version')} is newer than this "
            f"blurgen reads ({VERSION}); upgrade blur2flow"
        )
    _check_keys(path, manifest)
    return manifest


REQUIRED = ("source", "config", "splits", "shards")
SHARD_KEYS = ("file", "split", "samples", "H", "W")
SPLIT_KEYS = ("tasks_done", "samples", "complete", "skipped")


def _check_keys(path, manifest):
    """A manifest edited by hand or cut short: one line naming the missing key, not a KeyError later."""
    missing = [k for k in REQUIRED if k not in manifest]
    missing += [
        f"shards[{i}].{k}"
        for i, entry in enumerate(manifest.get("shards", []))
        for k in SHARD_KEYS
        if not isinstance(entry, dict) or k not in entry
    ]
    missing += [
        f"splits.{name}.{k}"
        for name, state in manifest.get("splits", {}).items()
        for k in SPLIT_KEYS
        if not isinstance(state, dict) or k not in state
    ]
    if missing:
        raise BlurgenError(
            f"{path}: manifest lacks '{missing[0]}'{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}; "
            "restore it from a copy or regenerate the shards into a new --out"
        )


def part_range(n: int, index: int, count: int) -> tuple[int, int]:
    """Tasks ``[a, b)`` of part ``index`` of ``count`` of an ``n``-task split: contiguous and in order, so
    the parts' shards, one part after the other, cover the task list as one run's do."""
    return n * index // count, n * (index + 1) // count


def incomplete(manifest: dict) -> list[str]:
    """What an interrupted folder lacks, one line per split that has not finished (empty when complete)."""
    lines = []
    for name, state in manifest["splits"].items():
        if not state["complete"]:
            total = state.get("tasks")
            done = f"{state['tasks_done']}{f' of {total}' if total is not None else ''} tasks"
            if "part_tasks" in state:  # an array job's part: its own slice of the list
                a, b = state["part_tasks"]
                done = f"{state['tasks_done'] - a} of its {b - a} tasks ({a}-{b})"
            lines.append(f"split '{name}' is incomplete: {done} done, {state['samples']} samples")
    return lines
