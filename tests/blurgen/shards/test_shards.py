import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch

from blurgen.core.errors import BlurgenError
from blurgen.shards import ShardReader
from blurgen.shards.verify import verify

ARGS = ["--count", "12", "--test-count", "3", "--size", "48x64", "--max-disp", "10", "--shard-size", "3"]


def shard_hashes(out):
    m = json.loads((out / "manifest.json").read_text())
    return [(s["file"], s["xxh3_128"], s["task_start"], s["task_end"]) for s in m["shards"]]


def test_workers_do_not_change_the_bytes(run, tmp_path):
    run("blurgen", "synthetic", "--out", tmp_path / "w1", *ARGS, check=True)
    run("blurgen", "synthetic", "--out", tmp_path / "w2", *ARGS, "--workers", "2", check=True)
    assert shard_hashes(tmp_path / "w1") == shard_hashes(tmp_path / "w2")
    assert len(shard_hashes(tmp_path / "w1")) == 4 + 1


def test_killed_generation_resumes_to_the_uninterrupted_result(run, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    run("blurgen", "synthetic", "--out", whole, *ARGS, check=True)
    # kill -9 as soon as the manifest names two shards, while later ones are being written
    cmd = [sys.executable, "-c", "from blurgen.cli import main; main()", "synthetic", "--out", str(killed), *ARGS]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        m = killed / "manifest.json"
        if m.exists() and len(json.loads(m.read_text())["shards"]) >= 2:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "generation finished before it could be killed"
    partial = shard_hashes(killed)
    assert 2 <= len(partial) < 5
    run("blurgen", "synthetic", "--out", killed, *ARGS, check=True)
    assert shard_hashes(killed) == shard_hashes(whole)
    assert not list(killed.glob(".*.tmp"))


def test_rerun_with_another_config_is_refused(run, tmp_path):
    run("blurgen", "synthetic", "--out", tmp_path, *ARGS, check=True)
    p = run("blurgen", "synthetic", "--out", tmp_path, *ARGS[:-2], "--seed", "9")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "another command or config" in p.stderr


def test_verify_names_the_shard_with_a_flipped_byte(run, make_synthetic, tmp_path):
    src = make_synthetic(10)
    for f in src.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    assert verify(tmp_path) == {}
    victim = tmp_path / "train-00001.h5"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    assert list(verify(tmp_path)) == ["train-00001.h5"]
    p = run("blurgen", "verify", tmp_path)
    assert p.returncode == 1 and "train-00001.h5" in p.stderr and "xxh3_128" in p.stderr
    assert "train-00000.h5" not in p.stderr


def test_verify_catches_nan_flow_written_with_a_matching_checksum(make_synthetic, tmp_path):
    src = make_synthetic(10)
    for f in src.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    with h5py.File(tmp_path / "train-00000.h5", "a") as f:
        f["flow_bwd"][2, 5, 5, 0] = np.nan
    m = json.loads((tmp_path / "manifest.json").read_text())
    from blurgen.shards.manifest import checksum

    m["shards"][0]["xxh3_128"] = checksum(tmp_path / "train-00000.h5")[1]
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    assert verify(tmp_path) == {"train-00000.h5": ["'flow_bwd' of sample 2 has NaN/Inf"]}


def test_format_v1_folders_are_read_verified_and_continued_in_v1(run, tmp_path):
    v2, v1 = tmp_path / "v2", tmp_path / "v1"
    run("blurgen", "synthetic", "--out", v2, *ARGS, check=True)
    # a v1 run killed before its first shard: the writer must go on in v1 (sha256, version attributes)
    m = json.loads((v2 / "manifest.json").read_text())
    v1.mkdir()
    (v1 / "manifest.json").write_text(json.dumps({**m, "version": 1, "splits": {}, "shards": []}))
    run("blurgen", "synthetic", "--out", v1, *ARGS, check=True)
    m1 = json.loads((v1 / "manifest.json").read_text())
    assert m1["version"] == 1 and len(m1["shards"]) == len(m["shards"]) == 5
    for s in m1["shards"]:
        assert s["sha256"] == hashlib.sha256((v1 / s["file"]).read_bytes()).hexdigest() and "xxh3_128" not in s
        with h5py.File(v1 / s["file"]) as f:
            assert f.attrs["version"] == 1
    old, new = ShardReader(v1), ShardReader(v2)
    assert len(old) == len(new) == 15
    for i in range(15):
        a, b = old.read(i), new.read(i)
        assert a["meta"] == b["meta"] and all(np.array_equal(a[k], b[k]) for k in ("blurred", "flow_fwd", "valid"))
    assert verify(v1) == {}
    victim = v1 / "test-00000.h5"
    data = bytearray(victim.read_bytes())
    data[len(data) // 3] ^= 0x10
    victim.write_bytes(bytes(data))
    assert verify(v1) == {"test-00000.h5": ["sha256 differs from the manifest (corrupt or modified)"]}


def test_reader_crops_and_splits(make_synthetic):
    root = make_synthetic(10, size=(64, 96), test_count=2)
    train, test, both = ShardReader(root, "train"), ShardReader(root, "test"), ShardReader(root)
    assert (len(train), len(test), len(both)) == (10, 2, 12)
    full = train.read(7)
    crop = train.read(7, crop=(10, 20, 32, 40))
    for key in ("blurred", "flow_fwd", "flow_bwd", "valid"):
        assert np.array_equal(crop[key], full[key][10:42, 20:60])
    assert full["meta"]["sequence"] == "synthetic_000007" and test.meta(0)["sequence"] == "synthetic_000010"
    assert np.array_equal(both.read(11)["blurred"], test.read(1)["blurred"])
    with pytest.raises(ValueError):
        train.read(0, crop=(40, 0, 32, 32))
    with pytest.raises(BlurgenError, match="no split 'val'"):
        ShardReader(root, "val")


def test_reader_in_dataloader_workers(make_synthetic):
    root = make_synthetic(10)
    reader = ShardReader(root, "train")
    reader.read(0)  # a handle opened in the parent must not leak into the workers

    class Crops(torch.utils.data.Dataset):
        def __len__(self):
            return len(reader)

        def __getitem__(self, i):
            return torch.from_numpy(reader.read(i, crop=(8, 8, 32, 32))["flow_fwd"])

    loader = torch.utils.data.DataLoader(Crops(), batch_size=5, num_workers=2)
    got = torch.cat(list(loader)).numpy()
    expected = np.stack([reader.read(i)["flow_fwd"][8:40, 8:40] for i in range(10)])
    assert np.array_equal(got, expected)


def test_keep_frames_stores_the_sharp_ends(make_synthetic):
    root = make_synthetic(3, keep_frames=True)
    reader = ShardReader(root)
    assert reader.fields(0) == ["blurred", "flow_fwd", "flow_bwd", "valid", "first", "last"]
    s = reader.read(1, fields=("first", "last", "blurred"))
    assert s["first"].shape == (64, 64, 3) and not np.array_equal(s["first"], s["last"])
    assert "first" not in ShardReader(make_synthetic(3)).fields(0)


def _sample(rng, h=16, w=24, **extra):
    return {
        "blurred": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        "flow_fwd": rng.normal(size=(h, w, 2)).astype(np.float32),
        "flow_bwd": rng.normal(size=(h, w, 2)).astype(np.float32),
        "valid": np.ones((h, w), np.uint8),
        "meta": {"i": 0},
        **extra,
    }


def test_v3_optional_fields_are_written_read_and_verified(tmp_path):
    from blurgen.shards import ShardWriter

    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    moving = (rng.random((16, 24)) < 0.3).astype(np.uint8)
    with ShardWriter(tmp_path, "test", {"a": 1}, extra_fields=("sharp", "moving")) as w:
        w.add("train", 0, [_sample(rng, sharp=sharp, moving=moving)])
        w.finish_split("train", 1)
    reader = ShardReader(tmp_path)
    assert reader.manifest["version"] == 3
    assert reader.fields(0) == ["blurred", "flow_fwd", "flow_bwd", "valid", "sharp", "moving"]
    s = reader.read(0, fields=("sharp", "moving"), crop=(2, 3, 8, 8))
    assert np.array_equal(s["sharp"], sharp[2:10, 3:11]) and np.array_equal(s["moving"], moving[2:10, 3:11])
    assert verify(tmp_path) == {}
    reader.close()
    with h5py.File(tmp_path / "train-00000.h5", "a") as f:
        f["moving"][0, 1, 1] = 7
    m = json.loads((tmp_path / "manifest.json").read_text())
    from blurgen.shards.manifest import checksum

    m["shards"][0]["xxh3_128"] = checksum(tmp_path / "train-00000.h5")[1]
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    assert verify(tmp_path) == {"train-00000.h5": ["'moving' of sample 0 holds values other than 0/1"]}
    with pytest.raises(ValueError, match="unknown optional shard field"):
        ShardWriter(tmp_path / "x", "test", {}, extra_fields=("depth",))


def test_a_v2_folder_goes_on_in_v2_without_the_optional_fields(tmp_path):
    from blurgen.shards import ShardWriter
    from blurgen.shards import manifest as mf

    rng = np.random.default_rng(1)
    mf.save(tmp_path, {**mf.new_manifest("test", {"a": 1}, "0"), "version": 2})  # a v2 run killed early
    with ShardWriter(tmp_path, "test", {"a": 1}, extra_fields=("moving",)) as w:
        w.add("train", 0, [_sample(rng, moving=np.zeros((16, 24), np.uint8))])
        w.finish_split("train", 1)
    reader = ShardReader(tmp_path)
    assert reader.manifest["version"] == 2 and "moving" not in reader.fields(0)
    with h5py.File(tmp_path / "train-00000.h5") as f:
        assert f.attrs["version"] == 2
    assert verify(tmp_path) == {}
