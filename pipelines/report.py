"""RUN/tables.md: each table's rows, the paper's figure beside ours and the baseline, and what is behind
every number (data, test images, training samples and epochs, the stage folders)."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from blurgen.core.files import atomic_write_text

from .stage import Stage, summary


@dataclass
class Row:
    """One line of a flow table: the paper's number and the stages that make ours (None: not run)."""

    name: str
    paper: float | None
    eval: Stage | None = None
    train: Stage | None = None
    floor: Stage | None = None
    data: str = ""
    note: str = ""


@dataclass
class Table:
    """A table: rows, ``figures`` (data set name -> (figure stage, whether its truth is exact)), notes,
    ``extra`` stages its rows do not name; ``render`` formats its body (default: a flow table), so
    Table 2 can bring its own columns."""

    key: str
    title: str
    rows: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    extra: list = field(default_factory=list)
    render: Callable[[Path, "Table"], list[str]] | None = None

    @property
    def stages(self) -> list[Stage]:
        rows = [s for r in self.rows if isinstance(r, Row) for s in (r.eval, r.floor) if s is not None]
        return rows + list(self.extra) + [stage for stage, _ in self.figures.values()]


def _training(run: Path, row: Row) -> str:
    done = summary(run, row.train)
    if done is None:
        return "—"
    start = "from scratch" if not row.train.inputs.get("init") else f"fine-tuned from `{row.train.inputs['init'].name}`"
    return f"{done['train_samples']} samples × {done['epochs']} epochs ({done['steps']} steps), {start}"


def _floor(run: Path, row: Row) -> str:
    done = summary(run, row.floor)
    if row.floor is None:
        return "exact"
    if done is None:
        return "—"
    return f"{done['epe_fwd_valid']:.3f} ({100 * done['valid_share']:.0f}% px valid; {done['matched']} windows)"


def flow_table(run: Path, table: Table) -> list[str]:
    """Mean per-image min(EPE fwd, EPE bwd) in px, model and zero flow, with the noise floor of the labels."""
    lines = [
        "| Row | Paper | Ours | Zero flow | Label noise floor | Test data | Training | Stages |",
        "|---|---:|---:|---:|---|---|---|---|",
    ]
    for row in table.rows:
        paper = "—" if row.paper is None else f"{row.paper:.3f}"
        done = summary(run, row.eval)
        if done is None:
            lines.append(f"| {row.name} | {paper} | not run | | | | | {row.note} |")
            continue
        ours, zero = done["model"]["epe_min"], done["zero_flow"]["epe_min"]
        test = f"{done['images']} {done['split']} images, {row.data}"
        stages = f"`{row.eval.name}`, `{row.train.name}`"
        lines.append(
            f"| {row.name} | {paper} | {ours:.3f} | {zero:.3f} | {_floor(run, row)} | {test} | {_training(run, row)} "
            f"| {stages} |"
        )
    return lines


def _figures(run: Path, table: Table) -> list[str]:
    lines = []
    for name, (stage, exact) in table.figures.items():
        done = summary(run, stage)
        if done is None:
            continue
        path = (Path("stages") / stage.name / "out" / "figure.png").as_posix()
        truth = "ground truth" if exact else "pseudo-ground truth"
        lines.append(
            f"- {name}: test image {done['index']} ({done['sequence']}), input | {truth} ({done['direction']}, the "
            f"direction min-EPE scores) | prediction | error (white = {done['max_flow']:.1f} px; EPE "
            f"{done['epe']:.3f})\n\n  ![{name}]({path})"
        )
    return lines


def write_tables(run: str | Path, tables: list[Table], command: str, scale: str) -> Path:
    """Write RUN/tables.md from the finished stages' records; returns its path."""
    run = Path(run)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# The paper's tables, reproduced (scale: {scale})",
        "",
        f"Command: `{command}` ({stamp}). Every stage's folder under `stages/` holds the `config.json` it "
        "computed and its `done.json` (summary, time taken).",
    ]
    if scale == "smoke":
        lines += [
            "",
            "Smoke scale: small synthetic data in the real layouts and a few epochs, to show that every stage "
            "connects; these numbers are not the paper's experiment.",
        ]
    for table in tables:
        lines += ["", f"## {table.title}", ""]
        lines += (table.render or flow_table)(run, table)
        if table.notes:
            lines += [""] + [f"- {note}" for note in table.notes]
        figures = _figures(run, table)
        if figures:
            lines += ["", "Figures:", ""] + figures
    path = run / "tables.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
