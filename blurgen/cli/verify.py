"""`blurgen verify DIR`: checksums, schema, finite flows; non-zero exit naming each bad shard."""

import sys

import click
from tqdm import tqdm

from ..shards.verify import verify


@click.command("verify")
@click.argument("root", type=click.Path())
def command(root):
    """Check every shard in ROOT against its manifest (sha256, schema, NaN/Inf, shapes)."""
    bad = verify(root, progress=lambda xs: tqdm(xs, desc="verify", unit="shard"))
    for name, problems in bad.items():
        click.echo(
            f"BAD {root}/{name}: {'; '.join(problems)}; restore the file from a copy or "
            "regenerate the shards into a new --out",
            err=True,
        )
    if bad:
        sys.exit(1)
    click.echo(f"{root}: all shards ok")
