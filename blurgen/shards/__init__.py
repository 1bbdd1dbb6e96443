"""Shard format v1, the contract between blurgen and b2f (DESIGN.md): writer, reader, manifest, verify."""

from .reader import ShardReader, sample_key
from .writer import ShardWriter

__all__ = ["ShardReader", "ShardWriter", "sample_key"]
