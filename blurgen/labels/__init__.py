"""Flow labellers for pairs of sharp frames: any ptlflow model, or OpenCV DIS (no weights needed).

A labeller has ``name``, ``checkpoint`` (JSON-able: where its weights came from) and
``flows(firsts, lasts) -> [flow H×W×2 float32]``, the flow from ``firsts[i]`` to ``lasts[i]``
(uint8 RGB H×W×3, sizes may differ between pairs).
"""

from typing import TYPE_CHECKING

from ..core.flow import fb_valid, max_flow

if TYPE_CHECKING:
    from .dis import DISLabeller
    from .ptlflow_labeller import PtlflowLabeller

DIS = "opencv-dis"


def make_labeller(
    flow: str, ckpt: str | None = None, device: str = "auto", corr_chunk: int = 21, seed: int = 0
) -> "DISLabeller | PtlflowLabeller":
    """``flow`` is ``opencv-dis`` or a ptlflow model name; ``ckpt`` a local file, a ptlflow
    checkpoint name (downloaded) or ``random`` (untrained weights drawn from ``seed``, for plumbing)."""
    if flow == DIS:
        from .dis import DISLabeller

        return DISLabeller()
    from .ptlflow_labeller import PtlflowLabeller

    return PtlflowLabeller(flow, ckpt, device, corr_chunk, seed)


def label_samples(
    labeller: "DISLabeller | PtlflowLabeller", samples: list[dict], fb_threshold: float = 1.0
) -> list[dict]:
    """Fill ``flow_fwd`` = flow(first, last), ``flow_bwd`` = flow(last, first) and ``valid`` (fwd-bwd
    check) of samples holding ``first``/``last``; both directions go through the labeller in one batch."""
    firsts = [s["first"] for s in samples]
    lasts = [s["last"] for s in samples]
    flows = labeller.flows(firsts + lasts, lasts + firsts)
    n = len(samples)
    for s, fwd, bwd in zip(samples, flows[:n], flows[n:]):
        s["flow_fwd"], s["flow_bwd"] = fwd, bwd
        s["valid"] = fb_valid(fwd, bwd, fb_threshold)
        s["meta"] = {
            **s.get("meta", {}),
            "labeller": labeller.name,
            "checkpoint": labeller.checkpoint,
            "max_flow": round(max_flow(fwd, s["valid"]), 3),
        }
    return samples
