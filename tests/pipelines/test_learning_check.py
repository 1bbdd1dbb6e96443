"""The learning check is a stage pipeline: a rerun prints the same numbers from the finished stages."""

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
    assert second.err.count("done before") == 3 and "running" not in second.err
    assert [line for line in second.out.splitlines() if "minutes" not in line] == [
        line for line in first.out.splitlines() if "minutes" not in line
    ]
