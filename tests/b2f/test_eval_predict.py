"""b2f metrics, b2f-eval and b2f-predict on a briefly trained small model."""

import dataclasses
import errno
import json
import os
import shutil

import numpy as np
import pytest
import torch
from helpers import error_line, invoke, tiny_model_config

from b2f import cli
from b2f.checkpoint import load_model, save_model
from b2f.ensemble import ensemble_predict
from b2f.evaluate import evaluate
from b2f.metrics import flow_metrics
from b2f.model import ModelConfig, build_model
from b2f.predict import MADE, fit_side, rescale_flow
from b2f.tiles import tiled_predict
from b2f.train import train
from blurgen.core.errors import BlurgenError
from blurgen.core.flow_io import read_flow
from blurgen.core.images import read_image, write_image
from blurgen.generate import generate
from blurgen.shards import ShardReader, ShardWriter
from blurgen.sources.synthetic import render_task, synthetic_splits

TINY = tiny_model_config()


@pytest.fixture(scope="module")
def trained(make_synthetic, tmp_path_factory):
    """(shards, run folder) after 2 short epochs; test images are 80×100, not multiples of 64."""
    torch.set_num_threads(1)
    shards = make_synthetic(4, size=(80, 100), test_count=3)
    run = tmp_path_factory.mktemp("b2f") / "run"
    train(shards, run, TINY, epochs=2, crop=(64, 64), lr=1e-3, workers=0, progress=False)
    return shards, run


def _epe_numpy(pred, gt, valid):
    err = np.linalg.norm(pred - gt, axis=-1)
    return err[valid > 0].mean(), err


def test_metrics_match_numpy():
    rng = np.random.default_rng(0)
    pred, fwd, bwd = (rng.normal(0, 3, (3, 20, 30, 2)).astype(np.float32) for _ in range(3))
    valid = (rng.random((3, 20, 30)) < 0.7).astype(np.uint8)
    valid[2] = 0
    pred[1] = bwd[1]  # image 1 predicts the backward flow exactly
    as_t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2)  # noqa: E731
    m = flow_metrics(as_t(pred), as_t(fwd), as_t(bwd), torch.from_numpy(valid))
    for i in range(2):
        e_fwd, err_fwd = _epe_numpy(pred[i], fwd[i], valid[i])
        e_bwd, err_bwd = _epe_numpy(pred[i], bwd[i], valid[i])
        err = err_bwd if e_bwd < e_fwd else err_fwd
        assert m["epe_fwd"][i] == pytest.approx(e_fwd, rel=1e-6)
        assert m["epe_bwd"][i] == pytest.approx(e_bwd, rel=1e-6, abs=1e-9)
        assert m["epe_min"][i] == pytest.approx(min(e_fwd, e_bwd), rel=1e-6, abs=1e-9)
        for t in (1, 3, 5):
            assert m[f"acc{t}"][i] == pytest.approx((err[valid[i] > 0] < t).mean(), rel=1e-9)
    assert m["epe_min"][1] == 0 and m["acc1"][1] == 1
    assert all(torch.isnan(m[k][2]) for k in m)  # no valid pixel: no number, rather than a fake 0


def test_eval_repeats_and_matches_a_direct_computation(trained):
    shards, run = trained
    first = evaluate(run / "checkpoints" / "last.ckpt", shards, "test", device="cpu", workers=0, progress=False)
    again = evaluate(run / "checkpoints" / "last.ckpt", shards, "test", device="cpu", workers=0, progress=False)
    assert first["per_image"] == again["per_image"] and first["model"] == again["model"]
    exported = evaluate(run / "model.pt", shards, "test", device="cpu", workers=0, progress=False)
    assert exported["per_image"] == first["per_image"]  # model.pt holds the final weights of last.ckpt

    model, _ = load_model(run / "model.pt")
    reader = ShardReader(shards, "test")
    assert first["images"] == len(reader) == 3
    for row in first["per_image"]:
        s = reader.read(row["index"])
        image = torch.from_numpy(s["blurred"]).permute(2, 0, 1)[None].float() / 255
        pred = model.predict(image)[0].permute(1, 2, 0).numpy()
        assert pred.shape == (80, 100, 2)
        e_fwd, _ = _epe_numpy(pred, s["flow_fwd"], s["valid"])
        e_bwd, _ = _epe_numpy(pred, s["flow_bwd"], s["valid"])
        assert row["model"]["epe_min"] == pytest.approx(min(e_fwd, e_bwd), rel=1e-5)
        zero_fwd, _ = _epe_numpy(0 * pred, s["flow_fwd"], s["valid"])
        assert row["zero_flow"]["epe_fwd"] == pytest.approx(zero_fwd, rel=1e-6)
    means = np.mean([r["zero_flow"]["epe_min"] for r in first["per_image"]])
    assert first["zero_flow"]["epe_min"] == pytest.approx(means, rel=1e-12)


def test_eval_cli_prints_a_table_and_writes_json(trained, tmp_path, capsys):
    shards, run = trained
    report = tmp_path / "eval.json"
    cli.evaluate([str(run / "model.pt"), str(shards), "--json", str(report), "--device", "cpu", "--workers", "0"])
    out = capsys.readouterr().out
    data = json.loads(report.read_text())
    model_row = next(line for line in out.splitlines() if line.startswith("model"))
    zero_row = next(line for line in out.splitlines() if line.startswith("zero flow"))
    assert float(model_row.split()[1]) == pytest.approx(data["model"]["epe_min"], abs=5e-4)
    assert float(zero_row.split()[2]) == pytest.approx(data["zero_flow"]["epe_min"], abs=5e-4)
    assert len(data["per_image"]) == 3


def test_eval_ensemble_scores_the_readings_over_flips_and_turns_combined(trained, tmp_path, capsys):
    shards, run = trained
    report = tmp_path / "eval.json"
    args = [str(run / "model.pt"), str(shards), "--json", str(report), "--device", "cpu", "--workers", "0"]
    cli.evaluate([*args, "--ensemble"])
    assert "combined over 8 flips and turns" in capsys.readouterr().out
    data = json.loads(report.read_text())
    model, _ = load_model(run / "model.pt")
    reader = ShardReader(shards, "test")
    assert data["ensemble"] is True
    for row in data["per_image"]:
        s = reader.read(row["index"])
        image = torch.from_numpy(s["blurred"]).permute(2, 0, 1)[None].float() / 255
        pred = ensemble_predict(model, image)[0].permute(1, 2, 0).numpy()
        e_fwd, _ = _epe_numpy(pred, s["flow_fwd"], s["valid"])
        e_bwd, _ = _epe_numpy(pred, s["flow_bwd"], s["valid"])
        assert row["model"]["epe_min"] == pytest.approx(min(e_fwd, e_bwd), rel=1e-5)


def test_predict_writes_a_known_flow_through_the_cli(trained, tmp_path, capsys):
    """A B2F-net whose weights are all zero but the finest prediction's bias (1.625, -0.8125) outputs that
    flow in level-1 (half-resolution) pixels everywhere, i.e. (3.25, -1.625) full-resolution pixels at every
    pixel of any input size. b2f-predict must write exactly that, in each format (all three store
    multiples of 1/64 exactly), at the input's size, with a one-colour picture and nothing else."""
    shards, _ = trained
    model = build_model(TINY)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.estimator.predictors[0].bias.copy_(torch.tensor([1.625, -0.8125]))
    save_model(tmp_path / "known.pt", model, TINY)
    blurred = ShardReader(shards, "test").read(0)["blurred"]
    write_image(tmp_path / "in" / "odd.png", blurred[:50, :70])  # not multiples of 64
    write_image(tmp_path / "in" / "full.jpg", blurred)
    sizes = {"odd": (50, 70), "full": blurred.shape[:2]}
    images = [str(tmp_path / "in" / n) for n in ("odd.png", "full.jpg")]
    for fmt in ("flo", "npy", "png"):
        out = tmp_path / fmt
        cli.predict([str(tmp_path / "known.pt"), *images, "-o", str(out), "--format", fmt, "--device", "cpu"])
        for stem, size in sizes.items():
            flow, valid = read_flow(out / f"{stem}.{fmt}")
            assert flow.shape == (*size, 2) and valid.all()
            assert (flow[..., 0] == 3.25).all() and (flow[..., 1] == -1.625).all()
            colour = read_image(out / f"{stem}_color.png")
            assert colour.shape == (*size, 3) and (colour == colour[0, 0]).all() and colour[0, 0].any()
        assert sorted(p.name for p in out.iterdir()) == sorted(
            [f"full.{fmt}", "full_color.png", f"odd.{fmt}", "odd_color.png", MADE]
        )  # no temporary files left
    assert "2 flows" in capsys.readouterr().out
    # read in tiles smaller than either image (blended where they overlap): still that flow everywhere
    cli.predict([str(tmp_path / "known.pt"), *images, "-o", str(tmp_path / "tiled"), "--tile", "32x48"])
    for stem, size in sizes.items():
        flow, _ = read_flow(tmp_path / "tiled" / f"{stem}.flo")
        assert flow.shape == (*size, 2)
        np.testing.assert_allclose(flow, np.broadcast_to([3.25, -1.625], flow.shape), rtol=0, atol=1e-5)


def test_eval_tile_scores_the_tiled_reading(trained, tmp_path, capsys):
    """b2f-eval --tile 64x48 on 80×100 test images: every image read in 2×3 tiles, blended, as b2f.tiles does."""
    shards, run = trained
    report = tmp_path / "eval.json"
    args = [str(run / "model.pt"), str(shards), "--json", str(report), "--device", "cpu", "--workers", "0"]
    cli.evaluate([*args, "--tile", "64x48"])
    assert "read in 64x48 tiles" in capsys.readouterr().out
    data = json.loads(report.read_text())
    model, _ = load_model(run / "model.pt")
    reader = ShardReader(shards, "test")
    assert data["tile"] == [64, 48] and data["ensemble"] is False
    for row in data["per_image"]:
        s = reader.read(row["index"])
        image = torch.from_numpy(s["blurred"]).permute(2, 0, 1)[None].float() / 255
        pred = tiled_predict(model.predict, image, (64, 48))[0].permute(1, 2, 0).numpy()
        e_fwd, _ = _epe_numpy(pred, s["flow_fwd"], s["valid"])
        e_bwd, _ = _epe_numpy(pred, s["flow_bwd"], s["valid"])
        assert row["model"]["epe_min"] == pytest.approx(min(e_fwd, e_bwd), rel=1e-5)
    code, _, err = invoke(cli.evaluate, capsys, *args, "--tile", "4x64")
    assert code == 2 and "'4x64' is not HxW with both at least 8" in err


def test_bad_inputs_are_one_line_and_write_nothing(trained, tmp_path, capsys):
    shards, run = trained
    good = tmp_path / "good.png"
    write_image(good, np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(SystemExit) as e:
        cli.predict([str(run / "model.pt"), str(good), str(tmp_path / "missing.png"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.startswith("error:") and "missing.png" in err and "\n" not in err
    assert not (tmp_path / "out").exists()

    model = build_model(TINY)
    other = dataclasses.asdict(ModelConfig.from_dict({**TINY, "arch": "unet"}))
    save_model(tmp_path / "mismatch.pt", model, other)  # weights of a b2f net labelled as a U-net
    with pytest.raises(BlurgenError, match="weights do not fit"):
        load_model(tmp_path / "mismatch.pt")
    name = "estimator.context.net.6.weight"
    with torch.no_grad():
        model.get_parameter(name)[0, 0, 0, 0] = float("inf")
    save_model(tmp_path / "diverged.pt", model, TINY)
    with pytest.raises(BlurgenError, match=rf"weights {name} hold NaN or inf \(a diverged run\)"):
        load_model(tmp_path / "diverged.pt")
    torch.save({"state_dict": model.state_dict()}, tmp_path / "no_config.ckpt")
    with pytest.raises(BlurgenError, match="no b2f model config"):
        load_model(tmp_path / "no_config.ckpt")


def test_eval_entry_point_rejects_a_non_checkpoint(run, trained, tmp_path):
    shards, _ = trained
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    proc = run("b2f-eval", junk, shards)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().startswith("error:") and "junk.ckpt" in proc.stderr and proc.stderr.count("\n") == 1


def test_predict_never_writes_over_an_input_or_a_file_it_did_not_make(trained, tmp_path, capsys):
    shards, run = trained
    blurred = ShardReader(shards, "test").read(0)["blurred"]
    write_image(tmp_path / "shot.png", blurred)
    original = (tmp_path / "shot.png").read_bytes()
    # the input in the output folder, and a flow PNG would take its name
    code, _, err = invoke(
        cli.predict, capsys, run / "model.pt", tmp_path / "shot.png", "-o", tmp_path, "--format", "png"
    )
    assert code == 2 and f"{tmp_path / 'shot.png'}: is an input" in error_line(err)
    assert (tmp_path / "shot.png").read_bytes() == original and sorted(os.listdir(tmp_path)) == ["shot.png"]
    # a file of the user's where an output would go
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "shot_color.png").write_bytes(b"mine")
    code, _, err = invoke(cli.predict, capsys, run / "model.pt", tmp_path / "shot.png", "-o", tmp_path / "out")
    assert code == 2 and "shot_color.png: exists and was not written by b2f-predict" in error_line(err)
    assert (tmp_path / "out" / "shot_color.png").read_bytes() == b"mine"
    # its own outputs it may write again
    (tmp_path / "out" / "shot_color.png").unlink()
    for _ in range(2):
        code, _, err = invoke(cli.predict, capsys, run / "model.pt", tmp_path / "shot.png", "-o", tmp_path / "out")
        assert code == 0, err


def test_rescale_flow_matches_an_affine_flow_on_the_full_grid():
    H, W, h, w = 120, 200, 48, 80
    a = np.array([1.5, -2.0]), np.array([[0.02, -0.01], [0.03, 0.015]])  # flow(x, y) = a0 + A @ (x, y), full px

    def affine(height, width):
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
        return a[0] + np.stack([xx, yy], -1) @ a[1].T

    # the flow on the small grid: sampled at the full-grid position of each small pixel's centre, in small px
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    centres = np.stack([(xs + 0.5) * W / w - 0.5, (ys + 0.5) * H / h - 0.5], -1)
    small = ((a[0] + centres @ a[1].T) * [w / W, h / H]).astype(np.float32)
    back = rescale_flow(small, (H, W))
    assert back.shape == (H, W, 2) and back.dtype == np.float32
    inner = (slice(3, -3), slice(3, -3))  # bilinear resampling is exact for an affine field away from the border
    assert np.abs(back[inner] - affine(H, W)[inner]).max() < 1e-4
    assert fit_side(3000, 4000, 1000) == (750, 1000) and fit_side(300, 400, 1000) == (300, 400)


class ConstantFlow(torch.nn.Module):
    """A stand-in network with a known answer: flow (1, 2) px at every pixel of whatever it is given."""

    seen = []

    def predict(self, image):
        self.seen.append(tuple(image.shape[-2:]))
        flow = torch.ones(1, 2, *image.shape[-2:])
        flow[:, 1] = 2
        return flow


def test_max_side_runs_the_network_small_and_scales_the_flow_back(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("b2f.predict.load_model", lambda path, device: (ConstantFlow(), {}))
    write_image(tmp_path / "big.png", np.full((300, 400, 3), 128, np.uint8))
    code, _, err = invoke(cli.predict, capsys, "m.pt", tmp_path / "big.png", "-o", tmp_path / "o", "--format", "npy")
    assert code == 0, err
    code, _, err = invoke(
        cli.predict, capsys, "m.pt", tmp_path / "big.png", "-o", tmp_path / "s", "--format", "npy", "--max-side", "100"
    )
    assert code == 0, err
    assert ConstantFlow.seen[-2:] == [(300, 400), (75, 100)]
    full, small = np.load(tmp_path / "o/big.npy"), np.load(tmp_path / "s/big.npy")
    assert full.shape == small.shape == (300, 400, 2)
    assert np.allclose(full, [1, 2]) and np.allclose(small, [4, 8])  # 1 px of a 4× smaller image is 4 px here


def test_out_of_memory_and_a_full_disk_are_one_line_with_the_remedy(tmp_path, capsys, monkeypatch):
    class Hungry(ConstantFlow):
        def predict(self, image):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 13.10 GiB")

    write_image(tmp_path / "big.png", np.zeros((300, 400, 3), np.uint8))
    monkeypatch.setattr("b2f.predict.load_model", lambda path, device: (Hungry(), {}))
    code, _, err = invoke(cli.predict, capsys, "m.pt", tmp_path / "big.png", "-o", tmp_path / "o")
    line = error_line(err)
    assert code == 2 and "big.png: out of memory running B2F-net on 400x300 pixels" in line
    assert "--max-side 200" in line

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("b2f.predict.load_model", lambda path, device: (ConstantFlow(), {}))
    monkeypatch.setattr("b2f.predict.write_flow", full)
    code, _, err = invoke(cli.predict, capsys, "m.pt", tmp_path / "big.png", "-o", tmp_path / "o")
    assert code == 2 and f"{tmp_path / 'o' / 'big.flo'}: cannot write (No space left on device)" in error_line(err)
    assert [p.name for p in (tmp_path / "o").iterdir()] == [MADE]  # no flow file, whole or partial


def test_eval_prints_its_table_before_a_json_that_cannot_be_written(trained, tmp_path, capsys, monkeypatch):
    shards, run = trained

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("b2f.evaluate.atomic_write_text", full)
    report = tmp_path / "r.json"
    code, out, err = invoke(cli.evaluate, capsys, run / "model.pt", shards, "--json", report, "--workers", "0")
    assert code == 2 and f"{report}: cannot write the report (No space left on device)" in error_line(err)
    assert next(line for line in out.splitlines() if line.startswith("model"))  # the numbers were printed
    assert not report.exists()


def _shards_without_valid_pixels(root):
    rng = np.random.default_rng(0)
    with ShardWriter(root, "test", {}) as w:
        for i in range(2):
            flow = rng.normal(size=(64, 64, 2)).astype(np.float32)
            sample = {"blurred": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "flow_fwd": flow}
            w.add("test", i, [{**sample, "flow_bwd": -flow, "valid": np.zeros((64, 64), np.uint8), "meta": {}}])
        w.finish_split("test", 2)
    return root


def test_eval_without_valid_pixels_says_so_and_writes_null_not_nan(trained, tmp_path, capsys):
    _, run = trained
    shards = _shards_without_valid_pixels(tmp_path / "shards")
    report = tmp_path / "r.json"
    code, out, err = invoke(cli.evaluate, capsys, run / "model.pt", shards, "--json", report, "--workers", "0")
    assert code == 0, err
    assert "NaN" not in report.read_text() and "nan" not in out
    data = json.loads(report.read_text())
    assert data["without_valid_pixels"] == 2 and data["model"]["epe_min"] is None
    assert data["per_image"][0]["model"]["acc1"] is None
    assert "n/a" in next(line for line in out.splitlines() if line.startswith("model"))
    assert "note: 2 of 2 images have no valid pixels" in out


def test_eval_refuses_an_incomplete_split_unless_allowed(trained, tmp_path, capsys):
    _, run = trained
    shards = tmp_path / "shards"
    splits = synthetic_splits(2, 4, seed=0, size=(64, 64), max_disp=6.0)

    def render(task):
        if task.index == 4:
            raise KeyboardInterrupt  # killed after the first test shard
        return render_task(task)

    with pytest.raises(KeyboardInterrupt):
        generate(shards, "t", {}, splits, render, shard_size=2)
    code, out, err = invoke(cli.evaluate, capsys, run / "model.pt", shards, "--workers", "0")
    line = error_line(err)
    assert code == 2 and "split 'test' is incomplete (2 of 4 tasks generated" in line and "--allow-incomplete" in line
    code, out, err = invoke(
        cli.evaluate, capsys, run / "model.pt", shards, "--workers", "0", "--allow-incomplete", "--json", tmp_path / "r"
    )
    assert code == 0 and "2 images" in out


def test_a_dataloader_workers_error_is_one_line(trained, tmp_path, capsys):
    _, run = trained
    shards = tmp_path / "shards"
    shutil.copytree(trained[0], shards)
    (shards / "test-00000.h5").unlink()
    code, _, err = invoke(cli.evaluate, capsys, run / "model.pt", shards, "--workers", "1")
    line = error_line(err)
    assert code == 2 and f"{shards / 'test-00000.h5'}: cannot open shard" in line
    assert "worker process" not in err and "Original" not in err  # not torch's rebuilt traceback


def test_a_resume_with_other_options_names_the_differing_leaf_not_the_whole_model(tmp_path):
    from b2f.run_config import check_resume

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    model = json.loads(json.dumps(TINY))  # as config.json holds it
    (tmp_path / "config.json").write_text(json.dumps({"model": {**model, "stn": True}, "lr": 1e-4, "epochs": 3}))
    with pytest.raises(BlurgenError) as e:
        check_resume(tmp_path, {"model": {**model, "stn": False}, "lr": 1e-4, "epochs": 3})
    assert "started with model.stn=True, not False; resume" in str(e.value) and "enc_channels" not in str(e.value)
