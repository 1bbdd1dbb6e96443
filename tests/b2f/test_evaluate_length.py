"""The predicted / true flow length ratio, and evaluation against another folder's exact flow."""

import numpy as np
import pytest
import torch
from helpers import tiny_model_config

from b2f.checkpoint import save_model
from b2f.evaluate import evaluate, format_table
from b2f.metrics import length_ratio, length_slope, median_lengths
from b2f.model import build_model
from blurgen.core.errors import BlurgenError
from blurgen.shards import ShardReader, ShardWriter
from blurgen.sources.highspeed import HighspeedOptions, make_highspeed
from blurgen.sources.synthetic import SyntheticOptions, make_synthetic

TINY = tiny_model_config()
# A B2F-net with every weight zero but the finest prediction's bias (level-1 pixels) predicts C at every
# pixel of the full-resolution image (see test_eval_predict's b2f-predict test).
BIAS = (1.625, -0.8125)
C = np.array([3.25, -1.625], np.float32)


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)


def test_length_ratio_of_known_predictions():
    rng = np.random.default_rng(0)
    truth = rng.normal(0, 4, (2, 16, 20, 2)).astype(np.float32)
    assert length_ratio(_t(2 * truth), _t(truth)).tolist() == pytest.approx([2.0, 2.0])
    assert length_ratio(_t(0 * truth), _t(truth)).tolist() == [0.0, 0.0]
    assert length_ratio(_t(-truth), _t(truth)).tolist() == pytest.approx([1.0, 1.0])  # length, not direction
    # invalid pixels and those whose true flow is under 1 px do not count, whatever is predicted there
    valid = rng.random((2, 16, 20)) < 0.6
    pred = 3 * truth
    pred[~valid] = 100.0
    short = np.linalg.norm(truth, axis=-1) < 1
    pred[short] = 1000.0
    assert length_ratio(_t(pred), _t(truth), torch.from_numpy(valid)).tolist() == pytest.approx([3.0, 3.0])
    # a random prediction: numpy's median of the ratio over the kept pixels
    pred = rng.normal(0, 4, truth.shape).astype(np.float32)
    got = length_ratio(_t(pred), _t(truth), torch.from_numpy(valid))
    for i in range(2):
        lengths = np.linalg.norm(truth[i], axis=-1)
        keep = valid[i] & (lengths >= 1)
        assert got[i] == pytest.approx(np.median(np.linalg.norm(pred[i], axis=-1)[keep] / lengths[keep]), rel=1e-6)
    # no pixel with a true flow of 1 px: no ratio
    assert torch.isnan(length_ratio(_t(pred), _t(0.1 * truth / np.abs(truth).max()))).all()


def test_median_lengths_and_the_slope_of_known_readings():
    rng = np.random.default_rng(2)
    direction = rng.normal(0, 1, (3, 12, 10, 2)).astype(np.float32)
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    true_len = np.array([2.0, 5.0, 11.0], np.float32)[:, None, None, None]
    truth = direction * true_len
    # a reading 1.5x the truth plus 4 px everywhere, in any direction: medians 7, 11.5, 20.5
    pred = rng.normal(0, 1, truth.shape).astype(np.float32)
    pred *= (1.5 * true_len + 4) / np.linalg.norm(pred, axis=-1, keepdims=True)
    t, p = median_lengths(_t(pred), _t(truth))
    assert t.tolist() == pytest.approx([2, 5, 11], rel=1e-6) and p.tolist() == pytest.approx([7, 11.5, 20.5], rel=1e-6)
    assert length_slope(t.tolist(), p.tolist()) == pytest.approx(1.5, rel=1e-6)
    assert length_slope([2, 5, 11], [9, 9, 9]) == pytest.approx(0, abs=1e-9)  # the same reading whatever the blur
    # images without a length drop out; fewer than two left, or no spread in the truth: no slope
    assert length_slope([2, None, 11, 4], [3, 7, 21, float("nan")]) == pytest.approx(2.0)
    assert length_slope([2, None], [3, 4]) is None and length_slope([3, 3], [1, 5]) is None


@pytest.fixture(scope="module")
def constant_model(tmp_path_factory):
    model = build_model(TINY)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.estimator.predictors[0].bias.copy_(torch.tensor(BIAS))
    path = tmp_path_factory.mktemp("model") / "constant.pt"
    save_model(path, model, TINY)
    return path


def _constant_shards(root):
    """Image 0: true flow C/2; 1: C (invalid pixels: 10 C); 2: C/8, shorter than 1 px everywhere."""
    rng = np.random.default_rng(1)
    valid = np.ones((64, 64), np.uint8)
    valid[:, :16] = 0
    with ShardWriter(root, "test", {}) as w:
        for i, scale in enumerate((0.5, 1.0, 0.125)):
            flow = np.broadcast_to(scale * C, (64, 64, 2)).copy()
            flow[valid == 0] = 10 * C
            sample = {"blurred": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "flow_fwd": flow, "valid": valid}
            w.add("test", i, [{**sample, "flow_bwd": -flow, "meta": {"sequence": f"s{i}", "frames": [0, 1]}}])
        w.finish_split("test", 3)
    return root


def test_evaluate_reports_the_length_ratio_of_a_known_prediction(constant_model, tmp_path):
    report = evaluate(constant_model, _constant_shards(tmp_path / "s"), device="cpu", workers=0, progress=False)
    rows = report["per_image"]
    length = float(np.linalg.norm(C))
    assert [r["model"]["length_ratio"] for r in rows[:2]] == [pytest.approx(2.0), pytest.approx(1.0)]
    assert rows[2]["model"]["length_ratio"] is None  # no true flow of 1 px
    assert [r["model"]["epe_min"] for r in rows] == [pytest.approx(length / 2), pytest.approx(0, abs=1e-6),
                                                      pytest.approx(length * 7 / 8)]  # fmt: skip
    assert report["model"]["length_ratio"] == pytest.approx(1.5)  # median of 2 and 1
    assert report["zero_flow"]["length_ratio"] == 0.0
    # true lengths |C|/2, |C| and none (under 1 px); the model reads |C| in both: a slope of 0
    assert [r["true_length"] for r in rows[:2]] == [pytest.approx(length / 2), pytest.approx(length)]
    assert rows[2]["true_length"] is None and [r["model"]["length"] for r in rows[:2]] == [pytest.approx(length)] * 2
    assert report["model"]["length_slope"] == pytest.approx(0, abs=1e-6) and report["zero_flow"]["length_slope"] == 0
    table = format_table(report).splitlines()
    assert "|pred|/|gt|" in table[1] and "slope" in table[1] and table[2].split()[-2:] == ["1.50", "0.00"]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """(DIS-labelled highspeed shards of a synthetic frame tree, the tree's exact shards)."""
    where = tmp_path_factory.mktemp("tree")
    options = SyntheticOptions(
        count=3, size=(64, 64), max_disp=6.0, objects=1, window=5, windows=2, frames_out=str(where / "frames")
    )
    make_synthetic(where / "exact", options)
    options = HighspeedOptions(root=str(where / "frames"), layout="gopro", window=5, flow="opencv-dis", train_share=0)
    make_highspeed(where / "labelled", options, device="cpu")
    return where / "labelled", where / "exact"


def test_evaluate_scores_against_the_exact_flow_of_the_same_windows(constant_model, labelled, tmp_path):
    shards, exact = labelled
    by_labels = evaluate(constant_model, shards, device="cpu", workers=0, progress=False)
    report = evaluate(constant_model, shards, device="cpu", workers=0, progress=False, truth=exact)
    reader, truth = ShardReader(shards, "test"), ShardReader(exact)
    twins = {(m["sequence"], m["frames"][0], m["frames"][-1]): j for j in range(len(truth)) for m in [truth.meta(j)]}
    assert report["images"] == len(reader) >= 2 and report["truth"] == str(exact.resolve())
    for row in report["per_image"]:
        meta = reader.meta(row["index"])
        s = truth.read(twins[(meta["sequence"], meta["frames"][0], meta["frames"][-1])])
        v = s["valid"] > 0
        zero = [np.linalg.norm(s[k], axis=2)[v].mean() for k in ("flow_fwd", "flow_bwd")]
        assert row["zero_flow"]["epe_min"] == pytest.approx(min(zero), rel=1e-6)
        model = [np.linalg.norm(C - s[k], axis=2)[v].mean() for k in ("flow_fwd", "flow_bwd")]
        assert row["model"]["epe_min"] == pytest.approx(min(model), rel=1e-5)
    # the DIS labels are not the exact flow: scoring against them gives other numbers
    assert by_labels["zero_flow"]["epe_min"] != pytest.approx(report["zero_flow"]["epe_min"], rel=1e-3)


def test_a_truth_folder_of_other_frames_is_one_line(constant_model, labelled, tmp_path):
    shards, _ = labelled
    other = _constant_shards(tmp_path / "other")
    with pytest.raises(BlurgenError, match=r"has no twin in .*other; pass the exact shards"):
        evaluate(constant_model, shards, device="cpu", workers=0, progress=False, truth=other)
