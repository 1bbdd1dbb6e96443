"""b2f metrics, b2f-eval and b2f-predict on a briefly trained small model."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from helpers import tiny_model_config

from b2f import cli
from b2f.checkpoint import load_model, save_model
from b2f.evaluate import evaluate
from b2f.metrics import flow_metrics
from b2f.model import ModelConfig, build_model
from b2f.train import train
from blurgen.core.errors import BlurgenError
from blurgen.core.flow_io import read_flow
from blurgen.core.images import read_image, write_image
from blurgen.shards import ShardReader

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
            [f"full.{fmt}", "full_color.png", f"odd.{fmt}", "odd_color.png"]
        )  # no temporary files left
    assert "2 flows" in capsys.readouterr().out


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
