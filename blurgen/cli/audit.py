"""`blurgen audit`: score pseudo-ground-truth shards against exact ones, one row per labeller run."""

import json

import click

from ..audit import audit

COLUMNS = (
    ("matched", "{:d}"),
    ("epe_fwd", "{:.3f}"),
    ("epe_bwd", "{:.3f}"),
    ("epe_fwd_valid", "{:.3f}"),
    ("epe_fwd_rejected", "{:.3f}"),
    ("valid_share", "{:.3f}"),
)


@click.command("audit")
@click.argument("shards", nargs=-1, required=True, type=click.Path())
@click.option("--truth", type=click.Path(), required=True, help="Shards with exact flow of the same frames.")
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write every per-sample error to this JSON file.",
)
def command(shards, truth, json_out):
    """EPE (px) of the flow in each of SHARDS against --truth, matched by sequence and frames:
    fwd/bwd over all pixels, fwd over the pixels marked valid and over those rejected."""
    reports = [audit(s, truth) for s in shards]
    click.echo(f"{'shards':<28} {'labeller':<16} " + " ".join(f"{name:>16}" for name, _ in COLUMNS))
    for r in reports:
        cells = " ".join(f"{fmt.format(r[name]):>16}" for name, fmt in COLUMNS)
        click.echo(
            f"{r['shards'][-28:]:<28} {r['labeller'][:16]:<16} {cells}"
            + (f"  ({r['unmatched']} unmatched)" if r["unmatched"] else "")
        )
    if json_out:
        with open(json_out, "w") as f:
            json.dump(reports, f, indent=1)
