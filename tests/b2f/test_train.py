"""b2f data and training: crops and flips with the flow transformed, overfitting, exact resume after a kill."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from helpers import tiny_model_config
from torch.utils.data import default_collate

from b2f import cli
from b2f.data import EVAL_FIELDS, ShardDataset
from b2f.lightning_module import B2FModule
from b2f.model import ModelConfig
from b2f.train import train
from blurgen.core.errors import BlurgenError

TINY = tiny_model_config()


def fit(shards, out, **options):
    options = {"crop": (64, 64), "workers": 0, "progress": False, **options}
    return train(shards, out, TINY, **options)


def losses(run, version=0):
    """{step: training loss} as logged to the CSV of one (resumed) part of a run."""
    with open(run / "csv" / f"version_{version}" / "metrics.csv") as f:
        return {int(r["step"]): float(r["train/loss_step"]) for r in csv.DictReader(f) if r["train/loss_step"]}


def _locate(whole, crop):
    """(y, x, left-right flipped, up-down flipped) such that ``crop`` is that window of ``whole``, or None."""
    size = crop.shape[-1]
    for y in range(whole.shape[-2] - size + 1):
        for x in range(whole.shape[-1] - size + 1):
            for h, v in ((0, 0), (1, 0), (0, 1), (1, 1)):
                window = whole[:, y : y + size, x : x + size]
                window = window.flip(-1) if h else window
                if torch.equal(window.flip(-2) if v else window, crop):
                    return y, x, h, v
    return None


def test_crops_and_flips_transform_the_flow(make_synthetic):
    shards = make_synthetic(2, size=(96, 128))
    whole = ShardDataset(shards, "train", fields=EVAL_FIELDS)[1]
    centre = ShardDataset(shards, "train", crop=(64, 64), fields=EVAL_FIELDS)[1]
    for name in ("image", "flow_fwd", "flow_bwd", "valid"):
        assert torch.equal(centre[name], whole[name][..., 16:80, 32:96])

    randomized = ShardDataset(shards, "train", crop=(64, 64), random_crop=True, flip=True, fields=EVAL_FIELDS)
    seen = set()
    for epoch in range(12):
        s = randomized[(1, epoch)]
        assert all(torch.equal(s[k], randomized[(1, epoch)][k]) for k in s if k != "index")  # a function of the key
        found = _locate(whole["image"], s["image"])
        assert found is not None, f"epoch {epoch}: not a crop of the sample under any flip"
        y, x, h, v = found
        seen.add((h, v))
        for name in ("flow_fwd", "flow_bwd"):
            flow = whole[name][:, y : y + 64, x : x + 64].clone()
            if h:  # mirrored left-right: u changes sign, time does not run backwards
                flow = flow.flip(-1) * torch.tensor([-1.0, 1.0])[:, None, None]
            if v:
                flow = flow.flip(-2) * torch.tensor([1.0, -1.0])[:, None, None]
            assert torch.equal(s[name], flow)
    assert seen == {(0, 0), (1, 0), (0, 1), (1, 1)}


def test_crop_larger_than_the_images_is_one_line(make_synthetic):
    with pytest.raises(BlurgenError, match="smaller than the 128x128 crop"):
        ShardDataset(make_synthetic(2, size=(64, 64)), "train", crop=(128, 128))


def test_min_direction_loss_ignores_the_arrow_of_time(make_synthetic):
    batch = default_collate(
        [ShardDataset(make_synthetic(2), "train", crop=(64, 64), fields=EVAL_FIELDS)[i] for i in range(2)]
    )
    reversed_ = {**batch, "flow_fwd": batch["flow_bwd"], "flow_bwd": batch["flow_fwd"]}
    mixed = {
        **batch,
        "flow_fwd": torch.stack([batch["flow_fwd"][0], batch["flow_bwd"][1]]),
        "flow_bwd": torch.stack([batch["flow_bwd"][0], batch["flow_fwd"][1]]),
    }
    torch.manual_seed(0)
    fwd, both = B2FModule(TINY, direction="fwd"), B2FModule(TINY, direction="min")
    both.load_state_dict(fwd.state_dict())
    flows = fwd(batch["image"])
    assert fwd.loss(flows, batch) != fwd.loss(flows, reversed_)
    loss = both.loss(flows, batch)
    # when min picks one side for every sample it equals that side's loss up to float rounding
    bound = torch.minimum(fwd.loss(flows, batch), fwd.loss(flows, reversed_)) * (1 + 1e-6)
    assert loss <= bound
    assert both.loss(flows, reversed_) == loss and both.loss(flows, mixed) == loss  # per sample, either order


def test_training_overfits_a_few_samples(make_synthetic, tmp_path):
    module = fit(make_synthetic(4), tmp_path / "run", epochs=40, lr=2e-3, batch_size=4)
    curve = list(losses(tmp_path / "run").values())
    assert len(curve) == 40  # one logged step per epoch
    assert np.mean(curve[-5:]) < 0.5 * np.mean(curve[:3]), curve
    exported = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert ModelConfig.from_dict(exported["model_config"]) == ModelConfig.from_dict(TINY)
    assert all(torch.equal(v, module.model.state_dict()[k]) for k, v in exported["state_dict"].items())


def test_kill_then_resume_continues_exactly(make_synthetic, tmp_path):
    shards = make_synthetic(8)
    run = tmp_path / "killed"
    # a real SIGKILL of a training process that would run for minutes, as soon as a checkpoint exists
    code = (
        "import sys, torch; torch.set_num_threads(1); from b2f.train import train; "
        f"train({str(shards)!r}, {str(run)!r}, {TINY!r}, epochs=1000, crop=(64, 64), workers=0, "
        "batch_size=8, random_crop=True, flip=True, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, cwd=os.getcwd())
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 60
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert last.exists(), err.decode()[-2000:]
    done = torch.load(last, weights_only=True)["epoch"] + 1  # epochs finished before the kill
    assert done < 1000

    with pytest.raises(BlurgenError, match="lr=0.0001, not 0.001"):  # resuming with other settings
        fit(shards, run, epochs=done + 2, lr=1e-3, batch_size=8, random_crop=True, flip=True, resume=True)
    resumed = fit(shards, run, epochs=done + 2, batch_size=8, random_crop=True, flip=True, resume=True)
    straight = fit(shards, tmp_path / "straight", epochs=done + 2, batch_size=8, random_crop=True, flip=True)
    assert torch.load(last, weights_only=True)["global_step"] == done + 2  # one step per epoch
    a, b = resumed.model.state_dict(), straight.model.state_dict()
    assert all(torch.allclose(a[k], b[k], rtol=0, atol=1e-6) for k in a)
    assert sorted(losses(run, version=1)) == [done, done + 1]  # only the 2 missing epochs ran


def test_run_folder_guards(make_synthetic, tmp_path):
    shards = make_synthetic(4)
    with pytest.raises(BlurgenError, match="nothing to resume|no checkpoints/last.ckpt"):
        fit(shards, tmp_path / "new", epochs=1, resume=True)
    (tmp_path / "old" / "checkpoints").mkdir(parents=True)
    with pytest.raises(BlurgenError, match="already holds a run"):
        fit(shards, tmp_path / "old", epochs=1)
    with pytest.raises(BlurgenError, match="multiples of 64"):
        fit(shards, tmp_path / "crop", epochs=1, crop=(48, 64))


def test_train_cli_stores_its_options(make_synthetic, tmp_path, capsys):
    run = tmp_path / "run"
    cli.train(
        [
            str(make_synthetic(4)),
            "--out",
            str(run),
            "--epochs",
            "1",
            "--crop",
            "64",
            "--limit-batches",
            "1",
            "--workers",
            "0",
            "--arch",
            "unet",
            "--no-stn",
            "--milestones",
            "30,10",
            "--lr",
            "0.01",
            "--device",
            "cpu",
        ]
    )
    config = json.loads((run / "config.json").read_text())
    assert (config["model"]["arch"], config["model"]["stn"], config["model"]["rb"]) == ("unet", False, True)
    assert (config["milestones"], config["lr"], config["crop"], config["epochs"]) == ([10, 30], 0.01, [64, 64], 1)
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 1
    out = capsys.readouterr().out.strip()
    assert out == f"{run}: trained; model in {run}/model.pt, checkpoints in {run}/checkpoints"
    with pytest.raises(SystemExit) as e:
        cli.train([str(make_synthetic(4)), "--out", str(tmp_path / "other"), "--crop", "48"])
    assert e.value.code == 2 and capsys.readouterr().err.strip().endswith("needs multiples of 64 (6 stride-2 levels)")
