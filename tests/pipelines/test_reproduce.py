"""A reduced smoke pipeline end to end: tables.md, a stage killed mid-training and rerun, a changed option."""

import json
import shutil

import numpy as np
import pytest
from helpers import tiny_model_config

import pipelines.steps
from b2f.motionseg import segment
from blurgen.core.errors import BlurgenError
from blurgen.shards import ShardReader
from pipelines.cli import build, main, reproduce
from pipelines.estimate import estimate
from pipelines.scale import FULL, Scale
from pipelines.steps import Hardware

TINY = Scale(
    "smoke",
    model=tiny_model_config(),
    epochs={"scratch": 2, "finetune": 2},
    crop=(64, 64),
    tree={"count": 3, "size": (64, 64), "max_disp": 6.0, "objects": 1, "window": 5, "windows": 2},
    sceneflow_tree={"count": 2, "size": (64, 64), "max_disp": 6.0, "objects": 1, "window": 2, "windows": 3},
    labeller={"flow": "opencv-dis"},
    monkaa={"camera": "left", "split": {"train": 4, "test": 2}},
    bsds={"count": 2, "size": (64, 64)},
    gong={"per_image": 2},
    deblur_prior=("hyper-laplacian", {}),
    segmentation={"count": 4, "test_count": 4, "size": (64, 64), "max_disp": 6.0, "objects": 2},
)
HW = Hardware("cpu", 1, 1, progress=False)
KILLED = "train-gopro-norb"


def _records(run):
    """{stage folder: (done.json mtime, its text)} of every finished stage."""
    return {p.parent.name: (p.stat().st_mtime_ns, p.read_text()) for p in (run / "stages").glob("*/done.json")}


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """Run Table 3, killed after one epoch of one training stage; return the records then and after a rerun."""
    run = tmp_path_factory.mktemp("reproduce") / "run"
    real_train = pipelines.steps.train

    def dies_after_an_epoch(shards, out, model, **options):
        if out.parent.name.startswith(KILLED):
            real_train(shards, out, model, **{**options, "epochs": 1})  # epochs may change on resume
            raise KeyboardInterrupt  # as Ctrl-C after the first epoch's checkpoint
        return real_train(shards, out, model, **options)

    pipelines.steps.train = dies_after_an_epoch
    try:
        with pytest.raises(KeyboardInterrupt):
            reproduce(["table1", "table2", "table3"], run, TINY, {}, HW, "b2f-reproduce all")
    finally:
        pipelines.steps.train = real_train
    before = _records(run)
    path = reproduce(["table1", "table2", "table3"], run, TINY, {}, HW, "b2f-reproduce all")
    return run, before, _records(run), path.read_text()


def test_a_rerun_finishes_without_redoing_finished_stages(interrupted):
    run, before, after, _ = interrupted
    assert before and not any(name.startswith(KILLED) for name in before)
    assert {k: after[k] for k in before} == before  # finished stages untouched, not rerun
    killed = [name for name in after if name.startswith(KILLED)]
    assert len(killed) == 1
    summary = json.loads(after[killed[0]][1])["summary"]
    assert summary["resumed"] and summary["epochs"] == TINY.epochs["finetune"]
    # b2f-train's own resume: a second log version, continuing from the first epoch's checkpoint
    assert sorted(p.name for p in (run / "stages" / killed[0] / "out" / "csv").iterdir()) == ["version_0", "version_1"]


def _section(text, title):
    """The table rows (cells stripped) of the section whose heading starts with ``title``."""
    body = text.split(f"## {title}")[1].split("\n## ")[0]
    rows = [line.split("|")[1:-1] for line in body.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in r] for r in rows[1:]]  # without the header


def _stage_out(run, prefix):
    return next(p for p in (run / "stages").iterdir() if p.name.startswith(prefix)) / "out"


def test_tables_md_has_the_paper_beside_ours_and_the_zero_flow_baseline(interrupted):
    run, _, after, text = interrupted
    assert "b2f-reproduce all" in text
    rows = _section(text, "Table 3")
    assert [r[0] for r in rows] == ["STN + RB", "no STN", "no RB", "neither (U-net)"]
    assert [r[1] for r in rows] == ["2.077", "2.263", "2.383", "2.748"]
    # zero flow from the shards themselves: per image min(mean |fwd|, mean |bwd|) over valid pixels
    reader = ShardReader(_stage_out(run, "gopro-"), "test")
    zero = []
    for i in range(len(reader)):
        s = reader.read(i, fields=("flow_fwd", "flow_bwd", "valid"))
        v = s["valid"] > 0
        zero.append(min(np.linalg.norm(s[k], axis=2)[v].mean() for k in ("flow_fwd", "flow_bwd")))
    assert {r[3] for r in rows} == {f"{np.mean(zero):.3f}"}
    assert all(float(r[2]) > 0 for r in rows)
    assert rows[0][5].startswith(f"{len(reader)} test images")

    rows = _section(text, "Table 1")
    assert [r[1] for r in rows] == ["1.158", "2.077", "2.038", "1.958", "5.875"]
    assert rows[0][4] == "exact" and all("% px valid" in r[4] for r in rows[1:4])
    assert rows[4][2] == "not run" and "Jin et al.'s row (5.875)" in text
    assert rows[1][1:] == _section(text, "Table 3")[0][1:]  # one GoPro-from-scratch stage serves both tables
    assert len(list((run / "stages").glob("figure-*/out/figure.png"))) == 3

    rows = {r[0]: r[1:] for r in _section(text, "Table 2")}
    assert rows["B2F (paper)"] == ["25.23", "0.786", "23.41", "0.714"]
    # the blurred input's PSNR from the test shards by its definition, 10 log10(255² / MSE), mean over images
    for column, preset in ((0, "bsd-m"), (2, "bsd-s")):
        reader = ShardReader(_stage_out(run, f"gong-{preset}-test"), "test")
        psnr = []
        for i in range(len(reader)):
            s = reader.read(i, fields=("blurred", "sharp"))
            mse = np.mean((s["blurred"].astype(np.float64) - s["sharp"]) ** 2)
            psnr.append(10 * np.log10(255**2 / mse))
        assert rows["blurred input"][column] == f"{np.mean(psnr):.2f}"
    assert len(list((run / "stages").glob("deblur-*/out/figure.png"))) == 2


def test_a_changed_option_makes_new_stages_beside_the_old(interrupted):
    run, _, after, _ = interrupted
    changed = Scale(**{**TINY.__dict__, "epochs": {"scratch": 2, "finetune": 1}})
    reproduce(["table3"], run, changed, {}, HW, "b2f-reproduce table3")  # Table 3 alone: its stages only
    now = _records(run)
    assert {k: now[k] for k in after} == after  # nothing old touched
    new = set(now) - set(after)
    assert sorted(n.rsplit("-", 1)[0] for n in new) == sorted(
        f"{kind}-gopro{s}" for kind in ("train", "eval") for s in ("", "-nostn", "-norb", "-unet")
    )
    assert all(json.loads(now[n][1])["summary"]["epochs"] == 1 for n in new if n.startswith("train"))


def test_full_scale_without_the_data_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["table3", "--out", str(tmp_path / "run")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --scale full needs --gopro ROOT (the GoPro data set); or run --scale smoke"
    with pytest.raises(BlurgenError, match="no such folder"):
        reproduce(["table3"], tmp_path / "run", FULL, {"gopro": str(tmp_path / "nope")}, HW, "")


def test_estimate_counts_each_training_stages_steps_from_its_shards(interrupted):
    run, *_ = interrupted
    stages = [s for table in build(["table3"], TINY, {}, HW) for s in table.stages]
    rows = estimate(run, stages, "cpu")
    samples = len(ShardReader(_stage_out(run, "gopro-"), "train"))
    assert [r["stage"].rsplit("-", 1)[0] for r in rows] == [f"train-gopro{s}" for s in ("", "-nostn", "-norb", "-unet")]
    for r in rows:
        assert r["samples"] == samples and r["steps"] == -(-samples // TINY.batch_size) * TINY.epochs["finetune"]
        assert r["s_per_step"] > 0 and r["hours"] == pytest.approx(r["steps"] * r["s_per_step"] / 3600)


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    """The segmentation table run twice: (run, records after the first run, after the second, tables.md)."""
    run = tmp_path_factory.mktemp("segmentation") / "run"
    reproduce(["segmentation"], run, TINY, {}, HW, "b2f-reproduce segmentation")
    first = _records(run)
    path = reproduce(["segmentation"], run, TINY, {}, HW, "b2f-reproduce segmentation")
    return run, first, _records(run), path.read_text()


def test_segmentation_table_scores_against_the_test_shards_moving_masks(segmented):
    run, first, second, text = segmented
    assert sorted(n.rsplit("-", 1)[0] for n in first) == [
        "segment-synthetic-moving",
        "synthetic-moving",
        "train-synthetic-moving",
    ]
    assert second == first  # the rerun skipped every finished stage
    assert "pictures only" in text and "b2f-reproduce segmentation" in text
    rows = {r[0]: r[1:] for r in _section(text, "Downstream: moving-object segmentation")}
    assert list(rows) == ["flow: ground truth", "flow: B2F-net", "baseline: no object", "baseline: largest blur"]
    # marking nothing finds no true pixel: IoU and F1 are 0 by their definitions
    assert rows["baseline: no object"][:4] == ["0.0"] * 4
    # the truth from the shards: numpy's count of `moving` over the test split
    shards = _stage_out(run, "synthetic-moving-")
    reader = ShardReader(shards, "test")
    masks = [reader.read(i, fields=("moving",))["moving"] > 0 for i in range(len(reader))]
    moving = sum(int(m.sum()) for m in masks)
    assert moving > 0
    report = json.loads((_stage_out(run, "segment-") / "segmentation.json").read_text())
    assert all(m["tp"] + m["fn"] == moving for m in report["methods"].values())
    # the ground-truth-flow row: the method's masks on flow_fwd, IoU and F1 pooled by their definitions
    found = [segment(reader.read(i, fields=("flow_fwd",))["flow_fwd"]).mask for i in range(len(reader))]
    tp = sum(int((f & m).sum()) for f, m in zip(found, masks))
    fp = sum(int((f & ~m).sum()) for f, m in zip(found, masks))
    fn = moving - tp
    assert rows["flow: ground truth"][:2] == [
        f"{100 * tp / (tp + fp + fn):.1f}",
        f"{200 * tp / (2 * tp + fp + fn):.1f}",
    ]
    head = f"{len(masks)} images of {shards.parent.name} [test], {sum(m.any() for m in masks)} with moving objects"
    assert head in text and f"({100 * moving / sum(m.size for m in masks):.1f}% of pixels move)" in text
    figure = (_stage_out(run, "segment-") / "segmentation.png").relative_to(run).as_posix()
    assert f"]({figure})" in text and (run / figure).is_file()


def test_deleting_a_finished_tables_inputs_remakes_nothing_and_the_table_still_prints(segmented, tmp_path):
    run, first, _, text = segmented
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    for name in first:
        if not name.startswith("segment-"):  # the model and its shards, as a user freeing the disk would
            shutil.rmtree(copy / "stages" / name)
    again = reproduce(["segmentation"], copy, TINY, {}, HW, "b2f-reproduce segmentation").read_text()
    assert list(_records(copy)) == [n for n in first if n.startswith("segment-")]  # nothing made again
    table = _section(text, "Downstream: moving-object segmentation")
    assert _section(again, "Downstream: moving-object segmentation") == table
    # what the deleted records held is unknown now, and said so
    assert "- Test data: ? synthetic scenes" in again and "trained on ? other scenes" in again
    assert "- Test data: ? synthetic scenes" not in text
