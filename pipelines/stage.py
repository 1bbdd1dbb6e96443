"""Stages named by what they compute, run once each: the resumable core of every pipeline.

A stage's folder is ``RUN/stages/<label>-<hash>``, the hash over its kind, its full configuration and
the names of the stages it reads, so a changed option (here or upstream) is a new folder and never
mixes with an old one. Settings that are None do not count: an option added later with a None
default (the old behaviour) leaves the names of the stages made before it, and their results, in use.
In the folder: ``config.json`` (what it computes), ``out/`` (what it made) and,
written atomically last, ``done.json`` (its summary and how long it took). A rerun skips stages with
``done.json`` and calls the others again; their actions resume through blurgen's and b2f-train's own
resume (shards already written, ``last.ckpt``). What only finished stages read is not remade: a
model's training shards may be deleted once it is trained.
"""

import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from blurgen.core.files import atomic_write_text

# action(out folder, {input key: that stage's out folder}) -> JSON-able summary kept in done.json
Action = Callable[[Path, dict[str, Path]], dict]


@dataclass(eq=False)
class Stage:
    """One step: ``kind`` (shards, train, eval, …), a readable ``label``, the ``config`` that decides its
    result (JSON-able; no run folder, device or worker counts in it) and the stages it reads."""

    kind: str
    label: str
    config: dict
    action: Action
    inputs: dict[str, "Stage"] = field(default_factory=dict)

    @property
    def identity(self) -> dict:
        return {
            "kind": self.kind,
            "config": self.config,
            "inputs": {k: s.name for k, s in sorted(self.inputs.items())},
        }

    @property
    def name(self) -> str:
        text = json.dumps(_set(self.identity), sort_keys=True, default=str)
        return f"{self.label}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def _set(value: object) -> object:
    """``value`` without the None entries of its dicts, at any depth (list items keep their places)."""
    if isinstance(value, dict):
        return {k: _set(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_set(v) for v in value]
    return value


def folder(run: Path, stage: Stage) -> Path:
    return Path(run) / "stages" / stage.name


def result(run: Path, stage: Stage) -> dict | None:
    """The stage's done record (summary, times), or None while it has not finished."""
    path = folder(run, stage) / "done.json"
    return json.loads(path.read_text()) if path.is_file() else None


def summary(run: Path, stage: Stage | None) -> dict | None:
    """The stage's summary; None without a stage, while it has not finished, or once its folder is deleted
    (a finished stage's inputs may be: see :func:`ordered`)."""
    done = result(run, stage) if stage is not None else None
    return None if done is None else done["summary"]


def recorded(run: Path, stage: Stage, *fields: str) -> list:
    """The values of a finished stage's summary that dotted ``fields`` name ("samples.test"), each "?" where
    the record or the field is missing: a table's line still prints once its inputs' folders are deleted."""
    done, values = summary(run, stage), []
    for path in fields:
        value = done
        for key in path.split("."):
            value = value.get(key, "?") if isinstance(value, dict) else "?"
        values.append(value)
    return values


def ordered(stages: Iterable[Stage], finished: Callable[[Stage], bool] | None = None) -> list[Stage]:
    """Every stage and what it reads, inputs first, each name once (shared stages run once). With
    ``finished``, the inputs of a finished stage are left out unless an unfinished one reads them: its
    result stands without them (their folders may have been deleted to free the disk)."""
    seen, order = set(), []

    def visit(stage):
        if stage.name in seen:
            return
        if finished is None or not finished(stage):
            for dep in stage.inputs.values():
                visit(dep)
        seen.add(stage.name)
        order.append(stage)

    for stage in stages:
        visit(stage)
    return order


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _write_progress(run: Path, order: list[Stage], current: str | None) -> None:
    """RUN/progress.json: each stage's state (done with its seconds, running since, pending)."""
    rows = []
    for stage in order:
        done = result(run, stage)
        state = "done" if done else "running" if stage.name == current else "pending"
        rows.append(
            {"stage": stage.name, "kind": stage.kind, "state": state, **({"seconds": done["seconds"]} if done else {})}
        )
    atomic_write_text(Path(run) / "progress.json", json.dumps({"updated": _now(), "stages": rows}, indent=1) + "\n")


def run_stages(run: str | Path, stages: Iterable[Stage]) -> list[Stage]:
    """Run every stage not yet done, inputs first; returns the ordered stages. Progress goes to stderr
    (which stage, n of N, the libraries' own bars within it, each stage's time) and RUN/progress.json."""
    run = Path(run)
    order = ordered(stages, lambda stage: result(run, stage) is not None)
    run.mkdir(parents=True, exist_ok=True)
    for i, stage in enumerate(order, 1):
        head = f"[{i}/{len(order)}] {stage.kind} {stage.name}"
        done = result(run, stage)
        if done:
            _log(f"{head}: done before ({done['seconds']:.1f} s)")
            continue
        where = folder(run, stage)
        where.mkdir(parents=True, exist_ok=True)
        config_path = where / "config.json"
        if not config_path.is_file():
            atomic_write_text(config_path, json.dumps(stage.identity, indent=1, default=str) + "\n")
        _write_progress(run, order, stage.name)
        _log(f"{head}: running")
        started, t0 = _now(), time.monotonic()
        summary = stage.action(where / "out", {k: folder(run, s) / "out" for k, s in stage.inputs.items()})
        seconds = time.monotonic() - t0
        record = {"started": started, "finished": _now(), "seconds": round(seconds, 2), "summary": summary}
        atomic_write_text(where / "done.json", json.dumps(record, indent=1, default=str) + "\n")
        _log(f"{head}: finished in {seconds:.1f} s")
    _write_progress(run, order, None)
    return order
