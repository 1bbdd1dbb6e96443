"""Which pseudo-ground-truth vectors to trust: the forward-backward consistency check.

Not ptlflow's ``fb_check``: its strict bounds reject the image's outermost pixel ring even at zero
flow, and it costs ptlflow's import for labellers (DIS) that need nothing else from it.
"""

import cv2
import numpy as np


def fb_valid(flow_fwd, flow_bwd, threshold=1.0):
    """uint8 H×W, 1 where p + flow_fwd(p) lands inside the image and flow_bwd there (bilinear)
    leads back to within ``threshold`` px of p; occluded and mismatched pixels get 0."""
    flow_fwd, flow_bwd = (np.ascontiguousarray(f, np.float32) for f in (flow_fwd, flow_bwd))
    h, w = flow_fwd.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    x1, y1 = xs + flow_fwd[..., 0], ys + flow_fwd[..., 1]
    back = cv2.remap(flow_bwd, x1, y1, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    ok = np.linalg.norm(flow_fwd + back, axis=2) < threshold
    ok &= (x1 >= 0) & (x1 <= w - 1) & (y1 >= 0) & (y1 <= h - 1)
    return ok.astype(np.uint8)
