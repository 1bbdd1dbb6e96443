"""OpenCV's DIS optical flow as a labeller: no weights, no download, CPU only."""

import cv2
import numpy as np


class DISLabeller:
    """Dense Inverse Search (Kroeger et al. 2016), OpenCV's ``medium`` preset, on grey frames."""

    name = "opencv-dis"
    checkpoint = "none"

    def __init__(self):
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def flows(self, firsts: list[np.ndarray], lasts: list[np.ndarray]) -> list[np.ndarray]:
        grey = lambda rgb: cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)  # noqa: E731
        return [self.dis.calc(grey(a), grey(b), None).astype(np.float32) for a, b in zip(firsts, lasts)]
