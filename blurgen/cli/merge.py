"""`blurgen merge PART… --out DIR`: the folders of an array job's `--part i/N` runs joined into one."""

import click
from tqdm import tqdm

from ..shards.merge import merge


@click.command("merge")
@click.argument("parts", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="The merged folder (new or empty).")
@click.option(
    "--copy", is_flag=True, help="Copy the shards instead of hard-linking them (an --out on another filesystem)."
)
def command(parts, out, copy):
    """Check that PARTS are the complete, sound slices 0/N … N-1/N of one run and make OUT: the folder that
    run would have made without --part (same samples, same order). Shards are hard-linked, so the parts
    stay as they are and take no extra space; delete them once OUT is verified."""
    manifest = merge(parts, out, copy, progress=lambda xs: tqdm(xs, desc="verify", unit="shard"))
    samples = sum(s["samples"] for s in manifest["splits"].values())
    how = "copied" if copy else "hard-linked"
    click.echo(f"{out}: {samples} samples in {len(manifest['shards'])} shards {how} from {len(parts)} parts")
