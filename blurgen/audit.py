"""How good is a pseudo ground truth: EPE of labelled shards against shards with exact flow.

Samples are matched on (sequence, first frame, last frame) of their meta, so any labeller's run over
the frames written by `blurgen synthetic --frames-out` can be scored against that run's exact shards.
"""

import os

import numpy as np
from tqdm import tqdm

from .core.errors import BlurgenError
from .core.flow import epe
from .shards.reader import ShardReader, sample_key


def _mean_of_defined(values: list[float]) -> float:
    """Mean over the samples where a value is defined (e.g. no pixel rejected: no rejected-pixel EPE); NaN if none."""
    defined = [v for v in values if not np.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


def sample_errors(pseudo: dict, truth: dict) -> dict:
    """EPE of one labelled sample against its exact one: forward and backward over all pixels,
    forward over the pixels the labeller trusts (``valid``) and over those it rejects."""
    valid = pseudo["valid"] > 0
    return {
        "epe_fwd": epe(pseudo["flow_fwd"], truth["flow_fwd"]),
        "epe_bwd": epe(pseudo["flow_bwd"], truth["flow_bwd"]),
        "epe_fwd_valid": epe(pseudo["flow_fwd"], truth["flow_fwd"], valid),
        "epe_fwd_rejected": epe(pseudo["flow_fwd"], truth["flow_fwd"], ~valid),
        "valid_share": float(valid.mean()),
    }


def audit(pseudo_root: str | os.PathLike, truth_root: str | os.PathLike) -> dict:
    """Per-sample errors and their means for every sample of ``pseudo_root`` found in ``truth_root``."""
    truth = ShardReader(truth_root)
    index = {sample_key(truth.meta(i)): i for i in range(len(truth))}
    pseudo = ShardReader(pseudo_root)
    fields = ("flow_fwd", "flow_bwd", "valid")
    rows, unmatched = [], 0
    for i in tqdm(range(len(pseudo)), desc=f"audit {pseudo_root}", unit="sample"):
        meta = pseudo.meta(i)
        j = index.get(sample_key(meta))
        if j is None:
            unmatched += 1
            continue
        if pseudo.size(i) != truth.size(j):
            raise BlurgenError(
                f"{pseudo_root}: sample {i} is {pseudo.size(i)} but its truth in {truth_root} is "
                f"{truth.size(j)}; audit shards made from the same frames"
            )
        row = sample_errors(pseudo.read(i, fields=fields), truth.read(j, fields=fields))
        rows.append(
            {
                "sequence": meta["sequence"],
                "frames": [meta["frames"][0], meta["frames"][-1]],
                "labeller": meta.get("labeller"),
                **row,
            }
        )
    if not rows:
        raise BlurgenError(
            f"{pseudo_root}: no sample matches one in {truth_root} by (sequence, first, last "
            "frame); pass the truth shards of the frames these were made from"
        )
    keys = [k for k in rows[0] if k.startswith(("epe", "valid"))]
    summary = {k: _mean_of_defined([r[k] for r in rows]) for k in keys}
    labellers = sorted({str(r["labeller"]) for r in rows})
    return {
        "shards": str(pseudo_root),
        "labeller": ", ".join(labellers),
        "matched": len(rows),
        "unmatched": unmatched,
        **summary,
        "samples": rows,
    }
