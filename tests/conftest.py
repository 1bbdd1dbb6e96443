"""Shared fixtures: synthetic shards made once per session, and running a CLI in-process."""

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from blurgen.generate import generate
from blurgen.sources.synthetic import render_task, synthetic_splits


def _run(script, *args, check=False):
    """Run a console script of ours (``run("blurgen", "verify", d)``) in a subprocess, as a user would.

    It goes through the entry point's module and function, so it needs no PATH and no reinstall.
    """
    module, func = entry_points(group="console_scripts")[script].value.split(":")
    proc = subprocess.run(
        [sys.executable, "-c", f"import sys, {module} as m; sys.argv[0] = {script!r}; m.{func}()", *map(str, args)],
        capture_output=True,
        text=True,
    )
    if check and proc.returncode:
        raise AssertionError(f"{script} {args} exited {proc.returncode}: {proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def run():
    """``run("blurgen", "verify", d, check=False) -> CompletedProcess``: a console script of ours in a subprocess."""
    return _run


@pytest.fixture(scope="session")
def make_synthetic(tmp_path_factory):
    """``make_synthetic(count, size=(64, 64), test_count=0, **task options) -> shard dir``, cached per arguments;
    ``extra_fields=("moving",)`` stores the optional fields too."""
    cache = {}

    def make(count, size=(64, 64), test_count=0, seed=0, max_disp=12.0, keep_frames=False, extra_fields=(), **opts):
        key = (count, size, test_count, seed, max_disp, keep_frames, tuple(extra_fields), tuple(sorted(opts.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp("synthetic")
            splits = synthetic_splits(count, test_count, seed=seed, size=size, max_disp=max_disp, **opts)
            generate(
                out,
                "synthetic",
                {"key": repr(key)},
                splits,
                render_task,
                shard_size=8,
                keep_frames=keep_frames,
                extra_fields=extra_fields,
            )
            cache[key] = out
        return cache[key]

    return make
