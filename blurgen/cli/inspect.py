"""`blurgen inspect DIR`: counts, sizes, sources, flow statistics and a contact sheet PNG."""

import json
from pathlib import Path

import click
import numpy as np

from ..core.images import write_image
from ..core.viz import contact_sheet
from ..shards.reader import ShardReader
from ..shards.summary import summarize


@click.command("inspect")
@click.argument("root", type=click.Path())
@click.option(
    "--sheet",
    type=click.Path(dir_okay=False),
    default=None,
    help="Contact sheet PNG to write [default: ROOT/contact_sheet.png].",
)
@click.option("--rows", type=click.IntRange(0), default=4, show_default=True, help="Samples on the sheet (0: none).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def command(root, sheet, rows, as_json):
    """Summarise the shards in ROOT and draw blurred | flow_fwd | flow_bwd for a few samples."""
    info = summarize(root)
    if as_json:
        click.echo(json.dumps(info, indent=1))
    else:
        click.echo(
            f"{root}: {info['samples']} samples from '{info['source']}' "
            f"(format v{info['version']}, blurgen {info['blurgen_version']})"
        )
        for name, s in info["splits"].items():
            skipped = ", ".join(f"{k}: {v}" for k, v in s["skipped"].items()) or "none"
            sizes = ", ".join(f"{k} ×{v}" for k, v in s["sizes"].items())
            click.echo(
                f"  {name:<6} {s['samples']:>7} samples in {s['shards']} shards"
                f"{'' if s['complete'] else ' (incomplete)'}; sizes {sizes}; skipped {skipped}"
            )
        st = info["flow_fwd_magnitude_px"]
        if st:
            click.echo(
                f"  |flow_fwd| px over valid pixels of {info['sampled']} samples: mean {st['mean']}, "
                f"median {st['p50']}, p95 {st['p95']}, max {st['max']}; valid share {info['valid_share']}"
            )
        click.echo(f"  labellers: {', '.join(f'{k} ×{v}' for k, v in info['labellers'].items())}")
    if rows and info["samples"]:
        reader = ShardReader(root)
        picks = np.unique(np.linspace(0, len(reader) - 1, min(rows, len(reader))).astype(int))
        sheet = Path(sheet or Path(root) / "contact_sheet.png")
        write_image(sheet, contact_sheet([reader.read(int(i)) for i in picks]))
        click.echo(f"  contact sheet: {sheet}", err=as_json)
