"""`blurgen verify DIR`: checksums, schema, finite flows; non-zero exit naming each bad shard."""

import sys

import click
from tqdm import tqdm

from ..shards import manifest as mf
from ..shards.verify import verify


@click.command("verify")
@click.argument("root", type=click.Path())
def command(root):
    """Check every shard in ROOT against its manifest (checksum, schema, NaN/Inf, shapes) and that every
    split was generated to its end (a killed run's folder is incomplete: rerun its command)."""
    bad = verify(root, progress=lambda xs: tqdm(xs, desc="verify", unit="shard"))
    missing = mf.incomplete(mf.load(root))
    for name, problems in bad.items():
        click.echo(
            f"BAD {root}/{name}: {'; '.join(problems)}; restore the file from a copy or "
            "regenerate the shards into a new --out",
            err=True,
        )
    for line in missing:
        click.echo(f"INCOMPLETE {root}: {line}; rerun the command that made it to finish", err=True)
    if bad or missing:
        sys.exit(1)
    click.echo(f"{root}: all shards ok, every split complete")
