"""`b2f-train SHARDS` without --out: the next free runs/<n>, printed at the start; --width reaches the config."""

import json

from b2f import cli


def test_train_without_out_makes_the_next_free_run_folder(make_synthetic, tmp_path, monkeypatch, capsys):
    shards = make_synthetic(4)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "4").mkdir(parents=True)  # an earlier run: never reused
    args = [
        str(shards),
        "--epochs",
        "1",
        "--limit-batches",
        "1",
        "--crop",
        "64",
        "--batch-size",
        "1",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--arch",
        "unet",
        "--width",
        "0.5",
    ]
    try:
        cli.train(args)
    except SystemExit as e:
        assert e.code in (0, None)
    err = capsys.readouterr().err
    assert "run folder: runs/5" in err and (tmp_path / "runs/5/model.pt").is_file()
    model = json.loads((tmp_path / "runs/5/config.json").read_text())["model"]
    assert model["enc_channels"] == [8, 16, 32, 48, 64, 96]  # --width 0.5
