import numpy as np

from blurgen.core.viz import flow_to_color


def test_middlebury_wheel_anchors():
    """Baker et al.'s wheel (RY 15, YG 6, GC 4, CB 11, BM 13, MR 6 = 55 hues, hue index
    (atan2(-v, -u)/pi + 1)/2 * 54): right is pure red, down falls in red-yellow, left in cyan-blue,
    zero is white, and half the radius is half as saturated."""
    flow = np.array([[[1, 0], [0, 1], [-1, 0], [0, 0], [0.5, 0]]], np.float32)
    rgb = flow_to_color(flow, max_radius=1.0)[0].astype(int)
    assert rgb[0].tolist() == [255, 0, 0]
    r, g, b = rgb[1]  # hue index 13.5: 13/15 of the way from red to yellow
    assert r == 255 and b == 0 and abs(g - 255 * 13 / 15) < 16
    r, g, b = rgb[2]  # hue index 27: in green-cyan / cyan-blue
    assert r == 0 and b == 255 and 150 < g < 255
    assert rgb[3].tolist() == [255, 255, 255]
    assert rgb[4][0] == 255 and abs(rgb[4][1] - 128) <= 1 and abs(rgb[4][2] - 128) <= 1
