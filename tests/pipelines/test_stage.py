"""Stages: names follow what they compute, a finished stage is skipped, a failed one leaves no marker."""

import json
import shutil

import pytest

from pipelines.stage import Stage, ordered, result, run_stages


def _writer(calls, text):
    def action(out, inputs):
        calls.append(text)
        out.mkdir(parents=True, exist_ok=True)
        (out / "value.txt").write_text(text + "".join((p / "value.txt").read_text() for p in inputs.values()))
        return {"value": text}

    return action


def test_a_changed_option_upstream_renames_every_stage_below():
    calls = []
    a, a2 = Stage("shards", "a", {"n": 1}, _writer(calls, "a")), Stage("shards", "a", {"n": 2}, _writer(calls, "a"))
    b, b2 = (Stage("train", "b", {"lr": 1}, _writer(calls, "b"), {"data": s}) for s in (a, a2))
    assert a.name.startswith("a-") and a.name != a2.name
    assert b.name != b2.name  # same own config, other input
    assert Stage("shards", "a", {"n": 1}, _writer(calls, "x")).name == a.name  # the action is not identity
    assert [s.name for s in ordered([b, b])] == [a.name, b.name]


def test_an_option_added_with_a_none_default_keeps_the_names_of_stages_made_before_it():
    old = Stage("shards", "a", {"n": 1, "opts": {"seed": 0, "gamma": None}, "crop": [1, None]}, None)
    assert Stage("shards", "a", {"n": 1, "opts": {"seed": 0}, "crop": [1, None]}, None).name == old.name
    assert Stage(
        "shards", "a", {"n": 1, "new": None, "opts": {"seed": 0, "zoom": None}, "crop": [1, None]}, None
    ).name == (old.name)
    # set, the option is a change; a None in a list keeps its place
    assert Stage("shards", "a", {"n": 1, "new": 0, "opts": {"seed": 0}, "crop": [1, None]}, None).name != old.name
    assert Stage("shards", "a", {"n": 1, "opts": {"seed": 0}, "crop": [1]}, None).name != old.name


def test_finished_stages_are_skipped_and_a_failed_one_has_no_marker(tmp_path):
    calls = []
    a = Stage("shards", "a", {"n": 1}, _writer(calls, "a"))

    def boom(out, inputs):
        calls.append("boom")
        raise RuntimeError("killed")

    b = Stage("train", "b", {}, boom, {"data": a})
    with pytest.raises(RuntimeError):
        run_stages(tmp_path, [b])
    assert result(tmp_path, a)["summary"] == {"value": "a"}
    assert result(tmp_path, b) is None
    assert json.loads((tmp_path / "stages" / b.name / "config.json").read_text())["inputs"] == {"data": a.name}
    states = {r["stage"]: r["state"] for r in json.loads((tmp_path / "progress.json").read_text())["stages"]}
    assert states == {a.name: "done", b.name: "running"}

    b_ok = Stage("train", "b", {}, _writer(calls, "b"), {"data": a})
    assert b_ok.name == b.name
    run_stages(tmp_path, [b_ok])
    assert calls == ["a", "boom", "b"]  # a ran once
    assert (tmp_path / "stages" / b.name / "out" / "value.txt").read_text() == "ba"
    assert {r["state"] for r in json.loads((tmp_path / "progress.json").read_text())["stages"]} == {"done"}


def test_what_only_finished_stages_read_is_not_remade(tmp_path):
    calls = []
    a = Stage("shards", "a", {"n": 1}, _writer(calls, "a"))
    b = Stage("train", "b", {}, _writer(calls, "b"), {"data": a})
    run_stages(tmp_path, [b])
    shutil.rmtree(tmp_path / "stages" / a.name)  # the training shards deleted to free the disk
    assert [s.name for s in run_stages(tmp_path, [b])] == [b.name]
    assert calls == ["a", "b"]
    assert (tmp_path / "stages" / b.name / "out" / "value.txt").read_text() == "ba"
    # a stage not yet run that reads them has them made again, once
    c = Stage("eval", "c", {}, _writer(calls, "c"), {"data": a, "model": b})
    run_stages(tmp_path, [b, c])
    assert calls == ["a", "b", "a", "c"]
    assert (tmp_path / "stages" / c.name / "out" / "value.txt").read_text() == "c" + "a" + "ba"
    assert [s.name for s in ordered([c])] == [a.name, b.name, c.name]  # without ``finished``: everything
