"""Default output folders: the brief's examples run without --out and never reuse an earlier folder."""

import json

from helpers import blurgen

from blurgen.core.cli import next_free


def test_next_free_counts_up_past_the_highest_number_and_ignores_other_names(tmp_path):
    assert next_free(tmp_path / "runs") == str(tmp_path / "runs" / "0")  # parent need not exist
    for name in ("0", "1", "7", "notes", "3b"):
        (tmp_path / "runs" / name).mkdir(parents=True)
    assert next_free(tmp_path / "runs") == str(tmp_path / "runs" / "8")


def test_a_generator_without_out_writes_shards_source_and_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = blurgen(capsys, "synthetic", "--count", "2", "--size", "32x32", "--max-disp", "4")
    assert code == 0, err
    assert "writing to shards/synthetic" in err
    manifest = json.loads((tmp_path / "shards/synthetic/manifest.json").read_text())
    assert manifest["splits"]["train"]["samples"] == 2 and out.startswith("shards/synthetic: 2 samples")
    code, _, err = blurgen(capsys, "synthetic", "--count", "2", "--size", "32x32", "--max-disp", "4")
    assert code == 0 and "writing to shards/synthetic" in err  # the same command resumes the same folder
