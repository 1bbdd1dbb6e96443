"""Frame trees in the real data sets' layouts, so `blurgen highspeed` and `blurgen monkaa` run on
synthetic scenes whose exact flow is known:

- ``gopro``: ``ROOT/<split>/<sequence>/000001.png …`` (GoPro's train/test folders)
- ``nfs``: ``ROOT/<sequence>/240/<sequence>/00001.png …`` (Need for Speed's 240 fps folders; no splits)
- ``sceneflow``: Monkaa's ``ROOT/frames_cleanpass/<sequence>/left/0000.png …`` with the exact flow of
  every consecutive pair in ``ROOT/optical_flow/<sequence>/into_future/left/OpticalFlowIntoFuture_0000_L.pfm``
  and ``into_past/left/OpticalFlowIntoPast_0001_L.pfm`` (one camera: the left one; no splits)
"""

from pathlib import Path

import numpy as np

from ...core.flow_io import write_flow

FRAME_LAYOUTS = ("gopro", "nfs", "sceneflow")
CAMERA = "left"  # the sceneflow layout's one camera: `blurgen monkaa ROOT --camera left`


def frame_number(layout: str, j: int) -> int:
    """The number in the file name of frame ``j`` (0-based) of a sequence: SceneFlow counts from 0."""
    return j if layout == "sceneflow" else j + 1


def sequence_name(layout: str, sequence: str) -> str:
    """The name the data set's loader gives the sequence (Monkaa's: ``<scene>/<camera>``), so that
    `blurgen audit` matches its samples with the exact ones."""
    return f"{sequence}/{CAMERA}" if layout == "sceneflow" else sequence


def frame_path(root: str | Path, layout: str, split: str, sequence: str, j: int) -> Path:
    """Where frame ``j`` (0-based) of ``sequence`` goes in a tree of ``layout``."""
    root, n = Path(root), frame_number(layout, j)
    if layout == "gopro":
        return root / split / sequence / f"{n:06d}.png"
    if layout == "nfs":
        return root / sequence / "240" / sequence / f"{n:05d}.png"
    return root / "frames_cleanpass" / sequence / CAMERA / f"{n:04d}.png"


def write_pair_flows(root: str | Path, sequence: str, j: int, into_future: np.ndarray, into_past: np.ndarray) -> None:
    """The sceneflow layout's flow files of frames j and j+1: ``into_future`` of j, ``into_past`` of j+1."""
    flows = Path(root) / "optical_flow" / sequence
    side = CAMERA[0].upper()
    future = flows / "into_future" / CAMERA / f"OpticalFlowIntoFuture_{j:04d}_{side}.pfm"
    past = flows / "into_past" / CAMERA / f"OpticalFlowIntoPast_{j + 1:04d}_{side}.pfm"
    for path, flow in ((future, into_future), (past, into_past)):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_flow(path, flow)
