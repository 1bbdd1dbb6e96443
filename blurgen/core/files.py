"""Files that are complete or absent: write under a temporary name, rename into place."""

import contextlib
import hashlib
import mmap
import os
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden temporary name in ``path``'s folder with the same suffix (writers pick the format
    from it); it is renamed over ``path`` when the block ends, and removed if the block fails."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically and durably (fsync before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def file_digest(path: str | os.PathLike, algorithm: Callable = hashlib.sha256) -> str:
    """Hex digest of the file at ``path`` by ``algorithm`` (a hashlib-style constructor)."""
    with open(path, "rb") as f:
        if not os.fstat(f.fileno()).st_size:  # mmap refuses empty files
            return algorithm(b"").hexdigest()
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:  # hashed in place, no copy
            return algorithm(m).hexdigest()
