"""What a shard directory holds: counts, sizes, skips and flow statistics, for `blurgen inspect`."""

from collections import Counter
from pathlib import Path

import numpy as np

from .reader import ShardReader


def summarize(root: str | Path, max_samples: int = 200, seed: int = 0) -> dict:
    """Counts from the manifest; flow statistics over up to ``max_samples`` evenly spread samples."""
    reader = ShardReader(root)
    m = reader.manifest
    splits = {}
    for name, state in m["splits"].items():
        shards = [s for s in m["shards"] if s["split"] == name]
        splits[name] = {
            "samples": state["samples"],
            "shards": len(shards),
            "complete": state["complete"],
            "sizes": dict(Counter(f"{s['H']}x{s['W']}" for s in shards for _ in range(s["samples"]))),
            "skipped": dict(Counter(s["reason"].split(":")[0] for s in state["skipped"])),
        }
    picks = np.unique(np.linspace(0, len(reader) - 1, min(max_samples, len(reader))).astype(int)) if len(reader) else []
    mags, valid_share, labellers = [], [], Counter()
    for i in picks:
        s = reader.read(int(i), fields=("flow_fwd", "valid"))
        mags.append(np.linalg.norm(s["flow_fwd"], axis=2)[s["valid"] > 0])
        valid_share.append(float(s["valid"].mean()))
        labellers[s["meta"].get("labeller", "?")] += 1
    mags = np.concatenate(mags) if mags else np.zeros(0)
    stats = (
        {q: round(float(np.percentile(mags, p)), 3) for q, p in (("p50", 50), ("p95", 95), ("max", 100))}
        if mags.size
        else {}
    )
    if mags.size:
        stats["mean"] = round(float(mags.mean()), 3)
    return {
        "root": str(root),
        "source": m["source"],
        "version": m["version"],
        "blurgen_version": m["blurgen_version"],
        "samples": len(reader),
        "splits": splits,
        "flow_fwd_magnitude_px": stats,
        "valid_share": round(float(np.mean(valid_share)), 4) if valid_share else None,
        "labellers": dict(labellers),
        "sampled": len(picks),
        "config": m["config"],
    }
