"""The learning check is a stage pipeline: a rerun prints the same numbers from the finished stages."""

import shutil

import pytest

from pipelines.learning_check import main

ARGS = ["--count", "4", "--test-count", "2", "--size", "64", "--crop", "64", "--epochs", "1", "--threads", "1"]


def _run(out, capsys):
    with pytest.raises(SystemExit):
        main([*ARGS, "--out", str(out)], standalone_mode=True)
    return capsys.readouterr()


def test_a_rerun_reuses_every_stage_and_prints_the_same_numbers(tmp_path, capsys):
    first = _run(tmp_path / "run", capsys)
    second = _run(tmp_path / "run", capsys)
    assert "zero flow" in first.out and "steps 1 in 1 epochs" in first.out
    # the evaluation is finished, so nothing it read is even looked at; the minutes are those recorded
    assert second.err.count("done before") == 1 and "running" not in second.err
    assert second.out == first.out
    assert "minutes (as each stage last ran): shards " in first.out and ", train " in first.out


def test_a_rerun_after_the_training_stages_were_deleted_prints_the_same_scores(tmp_path, capsys):
    first = _run(tmp_path / "run", capsys)
    for stage in (tmp_path / "run" / "stages").iterdir():
        if not stage.name.startswith("eval-"):  # the shards and the model, deleted to free the disk
            shutil.rmtree(stage)
    again = _run(tmp_path / "run", capsys)
    assert "running" not in again.err and again.err.count("done before") == 1
    # the evaluation's numbers stand; the steps and the minutes of the deleted stages are unknown
    kept = [line for line in first.out.splitlines() if "minutes" not in line]
    assert [line for line in again.out.splitlines() if "minutes" not in line] == kept
    (minutes,) = [line for line in again.out.splitlines() if "minutes" in line]
    assert minutes.startswith("steps ? in 1 epochs; minutes (as each stage last ran): eval ")
    assert "shards" not in minutes and "train" not in minutes
