"""The cross-generator matrix at a tiny scale: every cell filled, zero flow from the shards themselves,
the --ckpt rows of the CLI the same as the trained row."""

import dataclasses
import math
import re

import numpy as np
import pytest
from helpers import invoke, tiny_model_config

from b2f.evaluate import evaluate
from blurgen.shards import ShardReader, sample_key
from pipelines.cli import main
from pipelines.generalization import generalization, matrix_rows
from pipelines.scale import SMOKE
from pipelines.steps import Hardware

TINY = dataclasses.replace(
    SMOKE,
    model=tiny_model_config(),
    generalization={
        **SMOKE.generalization,
        "recipe": {"data": {"count": 4, "size": (64, 64)}, "train": {"epochs": 1, "crop": [64, 64]}},
    },
)
HW = Hardware("cpu", 1, 1, progress=False)
CELL = re.compile(r"^(?:own: )?([\d.]+) / ([\d.]+) = ([\d.]+)×, len ([\d.]+), slope (-?[\d.]+)( ✓)?$")
COLUMNS = ["synthetic", "highspeed", "gong bsd-m", "gong bsd-s", "monkaa"]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    run = tmp_path_factory.mktemp("generalization") / "run"
    return run, generalization(run, TINY, HW, None, "b2f-reproduce generalization").read_text()


def _rows(text):
    """{row name: {column: (model, zero, ratio, length)}} of the matrix."""
    lines = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ")]
    head = [c.strip() for c in lines[0]]
    assert head == ["Model (training data)", *COLUMNS]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line]
        rows[cells[0].split(" (")[0]] = {
            column: tuple(float(x) for x in CELL.match(cell).groups()[:4]) for column, cell in zip(COLUMNS, cells[1:])
        }
    return rows


def _stage_out(run, prefix):
    (found,) = [p for p in (run / "stages").iterdir() if p.name.rsplit("-", 1)[0] == prefix]
    return found / "out"


def _zero_flow(samples):
    """Mean over images of min(mean |flow_fwd|, mean |flow_bwd|) over the valid pixels."""
    zero = []
    for s in samples:
        v = s["valid"] > 0
        zero.append(min(np.linalg.norm(s[k], axis=2)[v].mean() for k in ("flow_fwd", "flow_bwd")))
    return f"{np.mean(zero):.3f}"


def test_every_cell_has_finite_numbers_and_zero_flow_is_the_mean_true_length(matrix):
    run, text = matrix
    rows = _rows(text)
    assert list(rows) == ["recipe"] and "| recipe (synthetic, cpu recipe) | own: " in text
    for model, zero, ratio, length in rows["recipe"].values():
        assert all(math.isfinite(x) for x in (model, zero, ratio, length)) and zero > 0
        assert ratio == pytest.approx(model / zero, abs=0.006)
    fields = ("flow_fwd", "flow_bwd", "valid")
    cell = text.split("\n| recipe")[1].split("|")
    # Monkaa and Gong: their own exact flow
    for column, prefix in (("monkaa", "gen-monkaa"), ("gong bsd-m", "gong-bsd-m-gen-test")):
        reader = ShardReader(_stage_out(run, prefix), "test")
        zero = _zero_flow(reader.read(i, fields=fields) for i in range(len(reader)))
        assert cell[1 + COLUMNS.index(column)].split(" / ")[1].startswith(zero)
    # highspeed: the exact flow of the same windows in the tree's shards, not the DIS labels
    labelled = ShardReader(_stage_out(run, "gen-highspeed"), "test")
    exact = ShardReader(_stage_out(run, "gen-tree-gopro") / "exact")
    twin = {sample_key(exact.meta(j)): j for j in range(len(exact))}
    samples = [exact.read(twin[sample_key(labelled.meta(i))], fields=fields) for i in range(len(labelled))]
    assert len(samples) >= 2
    assert cell[1 + COLUMNS.index("highspeed")].split(" / ")[1].startswith(_zero_flow(samples))
    assert f"highspeed: {len(labelled)} images" in text and "1 epochs = 1 steps" in text


def test_ckpt_rows_through_the_cli_match_the_trained_row(matrix, capsys):
    run, text = matrix
    model = _stage_out(run, "gen-train") / "model.pt"
    code, out, err = invoke(
        main, capsys, "generalization", "--out", run, "--scale", "smoke", "--device", "cpu",
        "--ckpt", f"a={model}", "--ckpt", f"b={model}",
    )  # fmt: skip
    assert code == 0, err
    rows = _rows(out)
    assert list(rows) == ["a", "b"] and rows["a"] == rows["b"] == _rows(text)["recipe"]
    # the test sets made once; one file named twice is one evaluation per column (named by the file's digest).
    # Looked at: the five test sets and the frame tree highspeed is scored against, not the photos and the
    # SceneFlow tree, which only finished test sets read
    assert err.count("done before") == 6 and err.count("running") == 5
    assert "bsds-photos" not in err and "gen-tree-sceneflow" not in err and "gen-tree-gopro" in err
    assert (run / "generalization.md").read_text() == out.rstrip("\n") + "\n"


def test_plain_rows_score_one_reading_in_stages_of_their_own(matrix, capsys):
    run, text = matrix
    model = _stage_out(run, "gen-train") / "model.pt"
    args = ("generalization", "--out", run, "--scale", "smoke", "--device", "cpu", "--ckpt", f"a={model}")
    code, out, err = invoke(main, capsys, *args, "--plain")
    assert code == 0, err
    assert "8 flips and quarter turns' readings combined" in text and "one pass (`--plain`)" in out
    assert err.count("running") == 5  # five evaluations of their own; the ensemble ones stay as they were
    ensemble, plain = _rows(text)["recipe"], _rows(out)["a"]
    shards = {"gong bsd-m": "gong-bsd-m-gen-test", "monkaa": "gen-monkaa"}
    for column, prefix in shards.items():
        found = _stage_out(run, prefix)
        for rows, combined in ((ensemble, True), (plain, False)):
            report = evaluate(model, found, device="cpu", workers=0, progress=False, ensemble=combined)
            assert rows[column][0] == pytest.approx(report["model"]["epe_min"], abs=6e-4)
    for column in COLUMNS:
        assert ensemble[column][1] == plain[column][1] and ensemble[column][0] != plain[column][0]
    code, _, err = invoke(main, capsys, *args)
    assert code == 0 and err.count("running") == 0  # the ensemble cells: done before, not remade


def test_tiled_rows_read_in_tiles_in_stages_of_their_own(matrix, capsys):
    run, text = matrix
    model = _stage_out(run, "gen-train") / "model.pt"
    args = ("generalization", "--out", run, "--scale", "smoke", "--device", "cpu", "--ckpt", f"a={model}", "--plain")
    code, out, err = invoke(main, capsys, *args, "--tile", "32x32")
    assert code == 0, err
    assert "--tile 32x32`" in out and "Each image read in half-overlapping 32x32 tiles, blended" in out
    assert err.count("running") == 5  # five evaluations of their own
    code, whole, _ = invoke(main, capsys, *args)  # the plain whole reading: done before, or made now
    assert code == 0
    whole, tiled = _rows(whole)["a"], _rows(out)["a"]
    for column, prefix in {"gong bsd-s": "gong-bsd-s-gen-test", "synthetic": "gen-synthetic"}.items():
        report = evaluate(model, _stage_out(run, prefix), device="cpu", workers=0, progress=False, tile=(32, 32))
        assert tiled[column][0] == pytest.approx(report["model"]["epe_min"], abs=6e-4)
    for column in COLUMNS:  # 64² test images read as nine 32² tiles: another reading, the same zero flow
        assert tiled[column][1] == whole[column][1] and tiled[column][0] != whole[column][0]


def test_bad_ckpt_arguments_are_one_line(tmp_path, capsys):
    for args, message in (
        (["--ckpt", "nameless"], "--ckpt nameless: expected NAME=PATH"),
        (["--ckpt", f"a={tmp_path}/none.pt"], "none.pt: no such checkpoint"),
        (["--ckpt", "a=x", "--ckpt", "a=y"], "the name a is given twice"),
    ):
        code, _, err = invoke(main, capsys, "generalization", "--out", tmp_path / "r", "--scale", "smoke", *args)
        assert code == 2 and message in err.strip().splitlines()[-1]
    code, _, err = invoke(main, capsys, "table3", "--out", tmp_path / "r", "--scale", "smoke", "--ckpt", "a=b")
    assert (
        code == 2
        and "--ckpt, --recipe, --set, --ensemble/--plain and --tile are for b2f-reproduce generalization" in err
    )


def test_recipe_and_set_reach_the_training_stage():
    (gpu,) = matrix_rows(TINY, HW, {}, "gpu")
    train, data = gpu.trained.config, gpu.trained.inputs["shards"].config
    assert list(train["model"]["enc_channels"]) == [8, 8, 12, 12, 16, 16]  # width 1: the scale's own model
    assert (train["batch_size"], train["epochs"], train["max_minutes"]) == (32, 1, 4.0)  # the scale sets epochs
    assert (data["count"], data["disp_law"]) == (4, "uniform")
    changes = {"data.disp_law": "log", "train.lr": 0.002, "width": 0.5}
    (cpu,) = matrix_rows(TINY, HW, {}, "cpu", changes)
    train, data = cpu.trained.config, cpu.trained.inputs["shards"].config
    assert list(train["model"]["enc_channels"]) == [8, 8, 8, 8, 8, 8]  # halved, floored at 8
    assert (train["batch_size"], train["lr"], data["disp_law"]) == (4, 0.002, "log")
    assert cpu.generator == 'synthetic, cpu recipe data.disp_law="log" train.lr=0.002 width=0.5'
    assert cpu.trained.name != matrix_rows(TINY, HW, {})[0].trained.name  # its own stage, not the recipe's


def test_set_size_as_json_renders_scenes_of_that_size(tmp_path):
    (row,) = matrix_rows(TINY, HW, {}, "cpu", {"data.size": [48, 80], "data.count": 2})  # --set data.size=[48,80]
    row.trained.inputs["shards"].action(tmp_path, {})
    reader = ShardReader(tmp_path, "train")
    assert len(reader) == 2 and {reader.size(i) for i in range(2)} == {(48, 80)}


def test_set_through_the_cli_and_its_bad_forms(tmp_path, capsys):
    code, out, err = invoke(
        main, capsys, "generalization", "--out", tmp_path / "r", "--scale", "smoke", "--device", "cpu",
        "--estimate", "--set", "train.epochs=7",
    )  # fmt: skip
    assert code == 0, err
    (row,) = [line for line in out.splitlines() if line.startswith("| `gen-train-")]
    assert [c.strip() for c in row.split("|")[2:4]] == ["after its shards stage", "7"]  # over the scale's 2 epochs
    for args, message in (
        (["--set", "width"], "--set width: expected KEY=VALUE"),
        (["--set", "data.nope=1"], "--set data.nope: not a recipe key; use width, data.KEY (KEY one of count,"),
        (["--set", "train.shards=x"], "--set train.shards: not a recipe key"),
        (["--recipe", "gpu", "--ckpt", "a=b"], "--ckpt scores given models and trains none"),
        (["--set", "data.count=abc"], '--set data.count="abc": expected a value like 16'),
        (["--set", "train.epochs=1.5"], "--set train.epochs=1.5: expected a value like 2"),
        (["--set", "data.disp_law=bogus"], "unknown --disp-law 'bogus'"),
        (["--set", "data.size=[48]"], "--size [48] is not two integers H, W of at least 8"),
        (["--set", "data.size=[48.5,64]"], "--size [48.5, 64] is not two integers H, W of at least 8"),
        (["--set", "train.epochs=0"], "epochs 0, batch size 4, lr 0.001: each must be positive"),
        (["--set", "width=0"], "width and train.max_minutes must be positive"),
        (["--set", "train.max_minutes=0"], "width and train.max_minutes must be positive"),
    ):
        code, _, err = invoke(main, capsys, "generalization", "--out", tmp_path / "r", "--scale", "smoke", *args)
        assert code == 2 and message in err.strip().splitlines()[-1]
    assert not (tmp_path / "r").exists()
    for args in (["--set", "width=1"], ["--plain"], ["--ensemble"], ["--tile", "32x32"]):  # explicit, not only defaults
        code, _, err = invoke(main, capsys, "table3", "--out", tmp_path / "r", "--scale", "smoke", *args)
        assert code == 2 and "--ensemble/--plain and --tile are for b2f-reproduce generalization" in err
    assert not (tmp_path / "r").exists()
