"""Segmentation scores on shards written here with exact ``moving`` masks (format v3's optional field)."""

import numpy as np
import pytest
import torch
from helpers import tiny_model_config

from b2f.checkpoint import save_model
from b2f.model import build_model
from b2f.motionseg.evaluate import evaluate_segmentation, format_table
from blurgen.core.errors import BlurgenError
from blurgen.core.images import read_image
from blurgen.shards import ShardWriter
from blurgen.sources.synthetic import Motion

NAMES = ("all three", "square patch", "two patches", "patch moving with the camera")


def write_shards(root, samples, extra_fields=("moving",)):
    writer = ShardWriter(root, "test-scenes", {"scenes": len(samples)}, extra_fields=extra_fields)
    for i, sample in enumerate(samples):
        writer.add("test", i, [sample])
    writer.finish_split("test", len(samples))
    return root


@pytest.fixture(scope="module")
def shards(scenes, render, tmp_path_factory):
    samples = []
    for name in NAMES:
        scene, _, truth = scenes[name]
        samples.append({**render(scene), "moving": truth.astype(np.uint8), "meta": {"sequence": name}})
    return write_shards(tmp_path_factory.mktemp("moving"), samples)


def test_scores_against_the_exact_masks(shards, scenes):
    report = evaluate_segmentation(shards, "test")
    truths = [scenes[n][2] for n in NAMES]
    assert report["images"] == 4 and report["with_objects"] == 3
    assert report["moving_share"] == pytest.approx(sum(t.sum() for t in truths) / (4 * 96 * 96))
    assert list(report["methods"]) == ["gt_flow", "no_object", "largest_blur"]  # no checkpoint, no B2F row
    rows = {r["sequence"]: r for r in report["per_image"]}
    assert rows["all three"]["gt_flow"]["fp"] <= 10  # camera motion only: (near) nothing marked
    assert rows["square patch"]["gt_flow"]["iou"] >= 0.9 and rows["two patches"]["gt_flow"]["iou"] >= 0.9
    glued = rows["patch moving with the camera"]["gt_flow"]
    assert (glued["tp"], glued["fn"], glued["iou"]) == (0, 900, 0.0)  # invisible to the method
    no_object = report["methods"]["no_object"]
    assert (no_object["tp"], no_object["fp"], no_object["fn"]) == (0, 0, sum(t.sum() for t in truths))
    assert no_object["iou"] == no_object["f"] == no_object["mean_iou"] == no_object["false_alarm"] == 0
    gt = report["methods"]["gt_flow"]
    # mean over the three images with objects: two found (≥ 0.9), one invisible (0)
    assert gt["mean_iou"] == pytest.approx(np.mean([rows[n]["gt_flow"]["iou"] for n in NAMES[1:]]))
    assert 0.6 <= gt["mean_iou"] <= 0.67 and gt["false_alarm"] <= 10 / 96**2

    table = format_table(report)
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(lines) == 1 + 3  # header and one row per method
    cells = [c.strip() for c in lines[1].strip("|").split("|")]
    assert cells[0] == "flow: ground truth"
    assert [float(c) for c in cells[1:]] == [
        round(100 * gt[k], 1) for k in ("iou", "f", "mean_iou", "mean_f", "false_alarm")
    ]


def test_largest_blur_finds_a_patch_that_moves_fastest(known, render, tmp_path):
    """A camera drifting 2 px and a patch moving 11 px: the largest blur is the patch, exactly."""
    size = (64, 64)
    scene = known.build_scene(
        size, known.camera(size, shift=(2.0, 1.0)), [((20, 16, 24, 20), Motion(shift=((9.0, -6.0), (0, 0))), "box")]
    )
    _, truth = known.exact_flow(scene)
    shards = write_shards(tmp_path / "s", [{**render(scene), "moving": truth.astype(np.uint8)}])
    report = evaluate_segmentation(shards, "test")
    assert report["methods"]["largest_blur"]["iou"] == 1.0 and report["methods"]["gt_flow"]["iou"] >= 0.9


def test_a_checkpoint_adds_the_b2f_row_and_the_figure(shards, tmp_path):
    torch.manual_seed(0)
    save_model(tmp_path / "model.pt", build_model(tiny_model_config()), tiny_model_config())
    figure = tmp_path / "fig" / "segmentation.png"
    report = evaluate_segmentation(
        shards, "test", ckpt=tmp_path / "model.pt", device="cpu", figure=figure, figure_rows=2
    )
    assert list(report["methods"]) == ["gt_flow", "b2f_flow", "no_object", "largest_blur"]
    assert all(0 <= report["methods"]["b2f_flow"][k] <= 1 for k in ("iou", "f"))
    # 2 rows (images with objects) × 6 panels (blurred, GT flow, mask, B2F flow, mask, truth), 160 px + 2 px gaps
    assert read_image(figure).shape == (2 * 162, 6 * 162, 3)
    assert "flow: B2F-net" in format_table(report)


def test_shards_without_moving_masks_are_a_one_line_error(scenes, render, tmp_path):
    shards = write_shards(tmp_path / "s", [render(scenes["square patch"][0])], extra_fields=())
    with pytest.raises(BlurgenError, match="has no 'moving' masks") as e:
        evaluate_segmentation(shards, "test")
    assert "\n" not in str(e.value)


def test_on_the_synthetic_source(make_synthetic):
    """blurgen's random scenes: patches moving at least a few px are found from the exact flow, on the grid
    of the stored masks, and nothing is marked where no patch is."""
    shards = make_synthetic(2, size=(64, 64), test_count=8, objects=2, min_disp=4.0, extra_fields=("moving",))
    report = evaluate_segmentation(shards, "test")
    assert report["images"] == 8 and report["with_objects"] >= 4
    gt, blur = report["methods"]["gt_flow"], report["methods"]["largest_blur"]
    assert gt["iou"] >= 0.9 and gt["fp"] <= 0.002 * 8 * 64 * 64
    assert blur["iou"] < gt["iou"]
