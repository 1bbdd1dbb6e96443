"""b2f data and training: crops and flips with the flow transformed, overfitting, exact resume after a kill."""

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
import traceback

import lightning as L
import numpy as np
import pytest
import torch
from helpers import error_line, tiny_model_config
from torch.utils.data import default_collate

import b2f.train as b2f_train
from b2f import cli
from b2f.checkpoint import read_weights
from b2f.data import EVAL_FIELDS, ShardDataset
from b2f.lightning_module import B2FModule
from b2f.model import ModelConfig, build_model
from b2f.run_config import check_resume, run_config
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
        f"train({str(shards)!r}, {str(run)!r}, {TINY!r}, epochs=1000, crop=(64, 64), workers=2, "
        "batch_size=4, random_crop=True, flip=True, progress=False)"
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
        fit(shards, run, epochs=done + 2, lr=1e-3, batch_size=4, random_crop=True, flip=True, resume=True)
    augment = dict(batch_size=4, random_crop=True, flip=True, workers=2)  # two batches per epoch, from workers
    resumed = fit(shards, run, epochs=done + 2, resume=True, **augment)
    straight = fit(shards, tmp_path / "straight", epochs=done + 2, **augment)
    assert torch.load(last, weights_only=True)["global_step"] == 2 * (done + 2)  # two steps per epoch
    a, b = resumed.model.state_dict(), straight.model.state_dict()
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    assert sorted(losses(run, version=1)) == [2 * done + 1, 2 * done + 3]  # only the 2 missing epochs ran


def test_onecycle_lr_follows_rafts_schedule(make_synthetic, tmp_path):
    shards, run = make_synthetic(8), tmp_path / "run"
    fit(shards, run, epochs=3, lr=1e-3, batch_size=1, lr_policy="onecycle")  # 8 steps per epoch, 24 in all
    with open(run / "csv" / "version_0" / "metrics.csv") as f:
        logged = {int(r["step"]): float(r["lr-Adam"]) for r in csv.DictReader(f) if r["lr-Adam"]}
    # OneCycleLR's definition (linear): from lr/25 up to lr at step 0.05 * 24 - 1, then down to lr/25/1e4
    # at the last step, 23
    peak, total = 1e-3, 24
    up, low = 0.05 * total - 1, peak / 25 / 1e4
    expected = {t: peak - (peak - low) * (t - up) / (total - 1 - up) for t in logged}
    assert len(logged) >= 3 and max(logged) >= 16, logged  # logged per step, not once an epoch
    assert logged == pytest.approx(expected, rel=1e-6)
    assert json.loads((run / "config.json").read_text())["milestones"] == []
    with pytest.raises(BlurgenError, match="onecycle run's schedule spans its epochs"):
        fit(shards, run, epochs=4, lr=1e-3, batch_size=1, lr_policy="onecycle", resume=True)


def test_ema_keeps_the_moving_average_of_every_steps_weights(make_synthetic, tmp_path):
    """4 samples in batches of 4: one step per epoch, so an unaveraged run of k epochs ends at the weights
    after step k (same seed, same steps). With decay 0.5 the kept weights are, by the EMA's definition
    (avg = w1, then avg = d·avg + (1 - d)·w), 0.25·w1 + 0.25·w2 + 0.5·w3; a resumed run keeps the average."""
    shards = make_synthetic(4)
    common = dict(batch_size=4, lr=1e-2)
    w = [fit(shards, tmp_path / f"plain{k}", epochs=k, **common).model.state_dict() for k in (1, 2, 3)]
    averaged = fit(shards, tmp_path / "ema", epochs=3, ema=0.5, **common).model.state_dict()
    fit(shards, tmp_path / "resumed", epochs=2, ema=0.5, **common)
    resumed = fit(shards, tmp_path / "resumed", epochs=3, ema=0.5, resume=True, **common).model.state_dict()
    saved = read_weights(tmp_path / "ema" / "model.pt")[1]
    for k in w[0]:
        expected = 0.25 * w[0][k] + 0.25 * w[1][k] + 0.5 * w[2][k]
        assert (w[2][k] - w[0][k]).abs().max() > 1e-4  # the weights moved
        for got in (averaged[k], saved[k], resumed[k]):
            torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    with pytest.raises(BlurgenError, match="strictly between 0 and 1"):
        fit(shards, tmp_path / "bad", epochs=1, ema=1.0)


@pytest.mark.parametrize("bias_decay", (True, False))
def test_bias_decay_decides_whether_adam_shrinks_the_biases(bias_decay):
    """With no loss gradient, the gradient Adam sees is the L2 term g = λ·w, and its first step is, by Adam's
    definition (m̂ = g, √v̂ = |g|), w − lr·g / (|g| + eps): every decayed parameter moves towards zero, the
    others stay. Without bias decay the biases stay, the STNs' identity transform (bias 1, 0, 0, 0, 1, 0) with them."""
    lr, decay, eps = 1e-3, 4e-4, 1e-8
    module = B2FModule(TINY, lr=lr, weight_decay=decay, bias_decay=bias_decay)
    optimizer = module.configure_optimizers()["optimizer"]
    before = {name: p.detach().clone() for name, p in module.named_parameters()}
    for p in module.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    moved = set()
    for name, p in module.named_parameters():
        g = decay * before[name] if p.ndim > 1 or bias_decay else torch.zeros_like(p)
        torch.testing.assert_close(p.detach(), before[name] - lr * g / (g.abs() + eps), rtol=0, atol=1e-7)
        if not torch.equal(p, before[name]):
            moved.add(name)
    stn_bias = "model.decode_first.stns.0.theta.bias"
    assert torch.equal(before[stn_bias], torch.tensor([1.0, 0, 0, 0, 1, 0]))
    assert (stn_bias in moved) == bias_decay
    assert "model.decode_first.stns.0.theta.weight" not in moved  # zero at the start: nothing to decay


def test_runs_recorded_before_the_decay_options_resume_with_the_papers_decay(tmp_path):
    """A config.json without weight_decay or bias_decay trained with 4e-4 on every parameter."""
    run = tmp_path / "run"
    run.mkdir()
    stored = run_config("shards", TINY)
    del stored["weight_decay"], stored["bias_decay"]
    (run / "config.json").write_text(json.dumps(stored))
    assert check_resume(run, run_config("shards", TINY))["bias_decay"] is True
    with pytest.raises(BlurgenError, match="bias_decay=True, not False; resume with the same options"):
        check_resume(run, run_config("shards", TINY, bias_decay=False))
    with pytest.raises(BlurgenError, match="--weight-decay -0.1: must be zero or positive"):
        run_config("shards", TINY, weight_decay=-0.1)


def test_run_folder_guards(make_synthetic, tmp_path):
    shards = make_synthetic(4)
    with pytest.raises(BlurgenError, match="nothing to resume"):
        fit(shards, tmp_path / "new", epochs=1, resume=True)
    fit(shards, tmp_path / "old", epochs=1)  # a finished epoch: a plain rerun would overwrite it
    with pytest.raises(BlurgenError, match="already holds a run; pass --resume"):
        fit(shards, tmp_path / "old", epochs=1)
    with pytest.raises(BlurgenError, match="multiples of 64"):
        fit(shards, tmp_path / "crop", epochs=1, crop=(48, 64))


def _kill_when(code, ready, timeout=60):
    """Start ``python -c code``, SIGKILL it as soon as ``ready()`` holds; its stderr."""
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, cwd=os.getcwd())
    deadline = time.time() + timeout
    while not ready() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    return proc.communicate()[1].decode()


def test_kill_in_the_first_epoch_leaves_a_restartable_folder(make_synthetic, tmp_path, capsys):
    """SIGKILL once the run has written config.json but before any epoch ends (16 steps of batch 1 in the
    first epoch): a rerun starts it again, and --resume starts it from its first epoch."""
    shards = make_synthetic(16)
    run = tmp_path / "run"
    code = (
        "import torch; torch.set_num_threads(1); from b2f.train import train; "
        f"train({str(shards)!r}, {str(run)!r}, {TINY!r}, epochs=5, crop=(64, 64), workers=0, batch_size=1, "
        "progress=False)"
    )
    err = _kill_when(code, lambda: (run / "config.json").exists())
    assert (run / "config.json").exists(), err[-2000:]
    assert not (run / "checkpoints" / "last.ckpt").exists()  # killed inside the first epoch
    capsys.readouterr()
    fit(shards, run, epochs=1, limit_batches=1)
    assert "an earlier start finished no epoch; starting again" in capsys.readouterr().err
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0

    _kill_when(code.replace(str(run), str(tmp_path / "again")), lambda: (tmp_path / "again" / "config.json").exists())
    fit(shards, tmp_path / "again", epochs=1, batch_size=1, resume=True)  # --epochs may change on resume
    assert "no epoch finished before it stopped; starting from the first" in capsys.readouterr().err
    assert torch.load(tmp_path / "again" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 16


def test_an_error_in_the_first_epoch_leaves_a_restartable_folder(make_synthetic, tmp_path, monkeypatch):
    """Out of memory at the first step (raised where the step runs): the rerun trains normally."""
    shards = make_synthetic(4)

    def oom(self, batch, batch_idx):
        raise torch.OutOfMemoryError("CUDA out of memory (injected)")

    with monkeypatch.context() as m:
        m.setattr(B2FModule, "training_step", oom)
        with pytest.raises(torch.OutOfMemoryError):
            fit(shards, tmp_path / "run", epochs=1)
    assert (tmp_path / "run" / "config.json").exists()
    fit(shards, tmp_path / "run", epochs=1)
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 1


def test_a_damaged_checkpoint_is_one_line_and_a_way_on(make_synthetic, tmp_path, capsys):
    """A last.ckpt cut to 45 KB (as Lightning's in-place write left one on a full disk): --resume says so in
    one line, no traceback; deleting it, as the line says, lets a rerun start the run again."""
    run = tmp_path / "run"
    argv = [str(make_synthetic(4)), "--out", str(run), "--crop", "64", "--workers", "0", "--limit-batches", "1"]
    argv += ["--device", "cpu", "--epochs"]
    cli.train([*argv, "1"])
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: 45 * 1024])
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.train([*argv, "2", "--resume"])
    line = error_line(capsys.readouterr().err)
    assert e.value.code == 2 and f"{last}: damaged checkpoint (unreadable" in line and "delete it" in line
    last.unlink()
    cli.train([*argv, "1"])
    assert torch.load(last, weights_only=True)["epoch"] == 0


def test_a_full_disk_while_writing_a_checkpoint_keeps_the_previous_one(make_synthetic, tmp_path, monkeypatch):
    """ENOSPC after part of the bytes are written: one line, last.ckpt still the previous epoch's, no
    temporary file left; --resume then continues."""
    shards = make_synthetic(4)
    run = tmp_path / "run"
    fit(shards, run, epochs=1)
    before = (run / "checkpoints" / "last.ckpt").read_bytes()
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"x" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as m:
        m.setattr(torch, "save", full_disk)
        with pytest.raises(BlurgenError, match="cannot write the checkpoint .No space left on device.; the previous"):
            fit(shards, run, epochs=2, resume=True)
    assert torch.save is real_save
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == before
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]
    fit(shards, run, epochs=2, resume=True)
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1


def test_weights_gone_nan_stop_the_run_and_keep_the_last_good_epoch(make_synthetic, tmp_path, monkeypatch):
    """A NaN put into a tap of the coarsest STN that 64² crops never reach (its map is 1×1, the tap sees
    padding): the loss stays finite, yet the run stops at that epoch's end with the weight's name, its
    checkpoint unwritten, last.ckpt still the first epoch's, no model.pt."""
    name = "decode_first.stns.5.features.1.0.weight"
    real_step = B2FModule.training_step

    def poison(self, batch, batch_idx):
        if self.current_epoch == 1:
            with torch.no_grad():
                self.model.get_parameter(name)[0, 0, 1, 0] = float("nan")
        return real_step(self, batch, batch_idx)

    monkeypatch.setattr(B2FModule, "training_step", poison)
    run = tmp_path / "run"
    with pytest.raises(BlurgenError, match=f"training diverged in epoch 2: weights {name} hold NaN or inf"):
        fit(make_synthetic(4), run, epochs=2)
    assert all(np.isfinite(v) for v in losses(run).values())
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 0 and torch.isfinite(ckpt["state_dict"][f"model.{name}"]).all()
    assert not (run / "model.pt").exists()


def test_world_size_is_recorded_and_a_change_needs_asking(make_synthetic, tmp_path, capsys):
    shards = make_synthetic(4)
    run = tmp_path / "run"
    fit(shards, run, epochs=1, batch_size=2)
    config = json.loads((run / "config.json").read_text())
    assert (config["world_size"], config["global_batch"]) == (1, 2)
    # as if the run had been started with DDP on 4 processes
    (run / "config.json").write_text(json.dumps({**config, "world_size": 4, "global_batch": 8}))
    with pytest.raises(BlurgenError, match="trained on 4 processes .global batch 8., this one has 1"):
        fit(shards, run, epochs=2, batch_size=2, resume=True)
    fit(shards, run, epochs=2, batch_size=2, resume=True, new_world_size=True)
    assert "continuing on 1 processes instead of 4" in capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert (config["world_size"], config["global_batch"]) == (1, 2)


def test_compile_keeps_the_state_dict_keys(make_synthetic, tmp_path, monkeypatch):
    """--compile compiles the model in place; checkpoints and model.pt keep the uncompiled key names, so
    they load into a plain B2FNet. (Inductor's code generation takes minutes on this CPU: the test compiles
    with the "eager" backend, which goes through the same Dynamo wrapping.)"""
    compiled = []
    real = torch.nn.Module.compile

    def eager(self, *args, **kwargs):
        compiled.append(type(self).__name__)
        return real(self, backend="eager")

    monkeypatch.setattr(torch.nn.Module, "compile", eager)
    fit(make_synthetic(4), tmp_path / "run", epochs=1, compile=True)
    assert compiled == ["B2FNet"]
    keys = set(build_model(TINY).state_dict())
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert {k.removeprefix("model.") for k in ckpt["state_dict"]} == keys
    exported = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert set(exported["state_dict"]) == keys


def test_bf16_mixed_training_runs_on_the_cpu(make_synthetic, tmp_path):
    """Lightning's bf16-mixed on a CPU (it raised from affine_grid before the STN sampled in float32)."""
    fit(make_synthetic(4), tmp_path / "run", epochs=1, precision="bf16-mixed")
    assert all(np.isfinite(v) for v in losses(tmp_path / "run").values())


def test_a_training_step_never_waits_for_the_device(make_synthetic, tmp_path, monkeypatch):
    """No host sync inside a training step (forward, loss, backward, optimizer, logging, progress bar)
    between the start of step 3 and the start of step 4 of a 6-step epoch with the progress bar on.

    A sync is a tensor read back to the host: aten::_local_scalar_dense in the profiler. The only ones
    allowed are Adam's reads of its step counters, which torch keeps on the CPU for exactly this reason
    (so on a GPU they cost no sync); every read is traced to its Python caller to tell them apart."""
    found = {}
    real_item = torch.Tensor.item

    class Probe(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if batch_idx == 3:
                self.callers = []

                def item(tensor):
                    self.callers.append(traceback.extract_stack()[-2].filename)
                    return real_item(tensor)

                monkeypatch.setattr(torch.Tensor, "item", item)
                self.prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
                self.prof.__enter__()
            elif batch_idx == 4:
                self.prof.__exit__(None, None, None)
                monkeypatch.setattr(torch.Tensor, "item", real_item)
                names = [e.name for e in self.prof.events()]
                found.update(names=names, callers=self.callers)

    real_trainer = L.Trainer
    monkeypatch.setattr(
        b2f_train.L, "Trainer", lambda **kw: real_trainer(**{**kw, "callbacks": [Probe(), *kw["callbacks"]]})
    )
    fit(make_synthetic(6), tmp_path / "run", epochs=1, batch_size=1, progress=True)
    assert "aten::convolution" in found["names"]  # the probe saw a step
    reads = found["names"].count("aten::_local_scalar_dense")
    optimizer = [c for c in found["callers"] if os.path.join("torch", "optim") in c]
    assert reads == len(optimizer) == len(found["callers"]), sorted(set(found["callers"]))


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
            "--weight-decay",
            "0.001",
            "--no-bias-decay",
            "--device",
            "cpu",
        ]
    )
    config = json.loads((run / "config.json").read_text())
    assert (config["weight_decay"], config["bias_decay"]) == (0.001, False)
    assert (config["model"]["arch"], config["model"]["stn"], config["model"]["rb"]) == ("unet", False, True)
    assert (config["milestones"], config["lr"], config["crop"], config["epochs"]) == ([10, 30], 0.01, [64, 64], 1)
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 1
    out = capsys.readouterr().out.strip()
    assert out == f"{run}: trained; model in {run}/model.pt, checkpoints in {run}/checkpoints"
    with pytest.raises(SystemExit) as e:
        cli.train([str(make_synthetic(4)), "--out", str(tmp_path / "other"), "--crop", "48"])
    assert e.value.code == 2 and capsys.readouterr().err.strip().endswith("needs multiples of 64 (6 stride-2 levels)")
