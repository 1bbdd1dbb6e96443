"""Hand worker results back through shared memory instead of pickling them down a pipe.

Pickled through loky's pipes, the images of a high-speed window cost the main process four copies and
fresh pages each; written by the worker into a file in a per-run folder in /dev/shm and mapped by the
main process, they cost a mapping (bench/highspeed.py measures both). No library does this for *results*
(joblib memmaps only arguments). Once the main process drops a result's arrays, its file goes back to
the workers, who write later results over it: pages that already exist cost no allocation, zeroing
and freeing on either side. A result falls back to plain pickling when its worker is on another
host (a Dask worker elsewhere: the folder is not there) or /dev/shm is full; without /dev/shm the folder is a
plain temporary one.

The folder also holds the count of results the main process has taken, which bounds how far workers
get ahead of a slow consumer (see :class:`Sender`).
"""

import ctypes
import mmap
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

SHM = "/dev/shm"
MIN_BYTES = 1 << 16  # smaller arrays pickle faster than a file round trip
FREE = "free-"  # prefix of a result file nobody maps any more
TAKEN = "taken"  # the count of results the main process has taken: an int64
_live, _live_lock = set(), threading.Lock()  # this process's folders not yet removed
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_taken = (None, None)  # (folder, count) of the run this process last took part in
_tuned = False  # whether this process keeps the memory it frees
PREFIX = "blurgen_"  # a run's folder: blurgen_<pid of its main process>_<random>


@dataclass(frozen=True)
class _Mapped:
    """A sample dict whose large arrays wait in ``path``: name -> (offset, shape, dtype)."""

    path: str
    arrays: dict
    rest: dict


def _claim(folder):
    """A file for a worker's result: a free one if there is one, else a new one."""
    for name in os.listdir(folder):  # no such folder: a worker on another host
        if name.startswith(FREE):
            path = os.path.join(folder, name[len(FREE) :])
            try:
                os.rename(os.path.join(folder, name), path)  # atomic: one worker wins it
                return path
            except FileNotFoundError:
                continue
    fd, path = tempfile.mkstemp(dir=folder)
    os.close(fd)
    return path


def _free(path):
    folder, name = os.path.split(path)
    with _live_lock:  # a file renamed while its folder is being removed would keep the folder alive
        if folder in _live:
            os.rename(path, os.path.join(folder, FREE + name))


def _write(sample, folder):
    arrays = {
        k: np.ascontiguousarray(v)
        for k, v in sample.items()
        if isinstance(v, np.ndarray) and v.nbytes >= MIN_BYTES and not v.dtype.hasobject
    }
    if not arrays:
        return sample
    path, layout, offset = None, {}, 0
    try:
        path = _claim(folder)
        with open(path, "r+b", buffering=0) as f:
            for k, v in arrays.items():
                view = memoryview(v).cast("B")
                while view:  # a raw write may be short
                    view = view[f.write(view) :]
                layout[k] = (offset, v.shape, v.dtype.str)
                offset += v.nbytes
            f.truncate(offset)  # a reused file may have been longer
    except OSError:  # that, or /dev/shm is full: this one goes by pickle
        if path is not None:
            os.unlink(path)
        return sample
    return _Mapped(path, layout, {k: v for k, v in sample.items() if k not in arrays})


def _read(mapped):
    with open(mapped.path, "r+b") as f:
        buf = mmap.mmap(f.fileno(), 0)  # shared, writable (a private map costs a copy per page written)
    weakref.finalize(buf, _free, mapped.path)  # when the last array over it is gone
    arrays = {
        k: np.frombuffer(buf, np.dtype(dtype), int(np.prod(shape)), offset).reshape(shape)
        for k, (offset, shape, dtype) in mapped.arrays.items()
    }
    return {**mapped.rest, **arrays}


def taken_count(folder: str, create: bool = False) -> np.ndarray | None:
    """The run's count of results the main process has taken, a 1-element int64 array in shared memory
    (None in a worker on another host)."""
    global _taken
    if _taken[0] != folder:
        try:
            with open(os.path.join(folder, TAKEN), "w+b" if create else "r+b", buffering=0) as f:
                if create:
                    f.write(bytes(8))
                _taken = (folder, np.frombuffer(mmap.mmap(f.fileno(), 8), np.int64))
        except FileNotFoundError:
            return None
    return _taken[1]


class Sender:
    """``render`` for a worker: its sample dicts (or lists of them) come back as :class:`_Mapped`.

    With ``ahead``, the result of task ``i`` waits in its worker until the main process has taken
    result ``i - ahead``: joblib dispatches on completion, not consumption, and blocking its dispatch
    would block the thread that hands results back. Free of deadlock when tasks reach workers one at a
    time in order (``batch_size=1``): the result the main process waits for never waits itself.
    A worker whose main process is gone (killed) exits instead of waiting forever. Workers keep the
    memory they free (:func:`_keep_freed_memory`).
    """

    def __init__(self, render: Callable, folder: str, ahead: int | None = None):
        self.render, self.folder, self.ahead = render, folder, ahead
        self.main = os.getpid()

    def __call__(self, index: int, task: object) -> object:
        _keep_freed_memory()
        result = self.render(task)
        taken = None if self.ahead is None else taken_count(self.folder)
        while taken is not None and taken[0] <= index - self.ahead:
            try:
                os.kill(self.main, 0)  # signal 0: only asks whether the process exists
            except ProcessLookupError:
                os._exit(1)  # nobody will take this result; loky's tracker removes the folder once all are gone
            time.sleep(0.002)
        if isinstance(result, dict):
            return _write(result, self.folder)
        if isinstance(result, list):
            return [_write(s, self.folder) if isinstance(s, dict) else s for s in result]
        return result


def exit_with(main: int) -> None:
    """Make this joblib worker exit when ``main`` dies: after a kill -9, loky's idle workers would otherwise
    wait minutes for work, holding the resource tracker (and so the run's shared folder) alive with them.
    Run as the worker's initializer, so that a worker that never got a task watches too. A Dask worker's
    own runtime looks after it."""
    if os.getppid() != main:  # not a worker of this host's main process (joblib's threads or sequential)
        return

    def watch():
        while os.getppid() == main:  # re-parented (to init or a subreaper) once main is gone
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="blurgen-exit-with-main", daemon=True).start()


def _keep_freed_memory():
    """Let this worker keep and reuse the memory it frees: by default glibc gives large buffers back to
    the kernel, so every decoded 720p frame faulted in ~1,300 fresh pages, ~8% of a worker's decode
    time (bench/highspeed.py's floor: 1.88 -> 1.74 s)."""
    global _tuned
    if not _tuned:
        _tuned = True
        try:
            libc = ctypes.CDLL(None)
            libc.mallopt(_M_MMAP_THRESHOLD, 64 << 20)
            libc.mallopt(_M_TRIM_THRESHOLD, 256 << 20)
        except AttributeError:  # not glibc: nothing to tune
            pass


def receive(result: object) -> object:
    """The worker's result as ``render`` returned it, arrays mapped from shared memory."""
    if isinstance(result, _Mapped):
        return _read(result)
    if isinstance(result, list):
        return [_read(s) if isinstance(s, _Mapped) else s for s in result]
    return result


def _alive(pid):
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True


def remove_stale(parent: str) -> list[str]:
    """Remove the run folders in ``parent`` whose main process is dead (killed before its resource tracker
    could clean up); returns them. A folder of a live process, or of another name, is left alone."""
    removed = []
    for name in os.listdir(parent):
        pid = name[len(PREFIX) :].split("_")[0]
        if name.startswith(PREFIX) and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
            removed.append(name)
    return removed


@contextmanager
def shared_folder() -> Iterator[str]:
    """A fresh folder for one run's results, in /dev/shm where there is one, removed afterwards;
    registered with loky's resource tracker, which removes it if this process is killed. Folders left
    by dead runs are removed first."""
    from joblib.externals.loky.backend import resource_tracker

    shm = os.path.isdir(SHM) and os.access(SHM, os.W_OK)
    parent = SHM if shm else tempfile.gettempdir()
    remove_stale(parent)
    folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}_", dir=parent)
    resource_tracker.register(folder, "folder")
    _live.add(folder)
    try:
        yield folder
    finally:
        with _live_lock:
            _live.discard(folder)
        shutil.rmtree(folder, ignore_errors=True)
        resource_tracker.unregister(folder, "folder")
