import json
import shutil

import cv2
import numpy as np
import pytest
from helpers import blurgen, error_line

from blurgen.audit import audit
from blurgen.blur import average_frames
from blurgen.cli import main
from blurgen.core.errors import BlurgenError
from blurgen.core.images import read_image, write_image
from blurgen.shards import ShardReader
from blurgen.sources.highspeed import Sequence, decode_window, detect_layout, discover, split_sequences, window_tasks

H, W = 64, 96
SEQS = ["synthetic_000000", "synthetic_000001", "synthetic_000002"]  # 21 frames each: 3 windows of 7
TRAIN = ["train/" + s for s in SEQS[:2]] + ["test/" + SEQS[2]]


def samples(out):
    r = ShardReader(out)
    return [r.read(i, fields=r.fields(i)) for i in range(len(r))]


def by_window(out):
    return {(s["meta"]["sequence"], s["meta"]["frames"][0], s["meta"]["frames"][-1]): s for s in samples(out)}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Exact shards and the GoPro-layout frames they were made from (`blurgen synthetic --frames-out`)."""
    root = tmp_path_factory.mktemp("highspeed")
    main(
        [
            "synthetic",
            "--out",
            str(root / "truth"),
            "--frames-out",
            str(root / "gopro"),
            "--count",
            "2",
            "--test-count",
            "1",
            "--size",
            f"{H}x{W}",
            "--windows",
            "3",
            "--max-disp",
            "10",
        ]
    )
    return root


def frames_of(tree, rel):
    return sorted((tree / "gopro" / rel).glob("*.png"))


def test_gopro_windows_blur_exactly_and_dis_labels_within_half_a_pixel(tree, tmp_path, capsys):
    code, out, err = blurgen(
        capsys,
        "highspeed",
        tree / "gopro",
        "--out",
        tmp_path / "dis",
        "--flow",
        "opencv-dis",
        "--keep-frames",
        "--workers",
        "2",
        "--batch",
        "2",
    )
    assert code == 0, err
    assert out.strip().startswith(f"{tmp_path / 'dis'}: 9 samples of 9 windows (gopro, 3 sequences")
    got, truth = by_window(tmp_path / "dis"), by_window(tree / "truth")
    assert sorted(got) == sorted(truth) == sorted((s, a, a + 6) for s in SEQS for a in (1, 8, 15))
    for key, s in got.items():
        t = truth[key]
        assert s["meta"]["frames"] == list(range(key[1], key[2] + 1))
        assert s["meta"]["labeller"] == "opencv-dis" and s["meta"]["checkpoint"] == "none"
        assert np.array_equal(s["blurred"], t["blurred"])  # exact sRGB mean, as the truth's
        rel = next(r for r in TRAIN if r.endswith(key[0]))
        files = frames_of(tree, rel)[key[1] - 1 : key[2]]
        assert np.array_equal(s["first"], read_image(files[0])) and np.array_equal(s["last"], read_image(files[-1]))
        assert s["flow_fwd"].shape == (H, W, 2) and s["valid"].shape == (H, W)
    # measured: EPE 0.21-0.23 px over |flow| up to 10 px; the flows swapped (wrong orientation) give > 2 px
    report = audit(tmp_path / "dis", tree / "truth")
    assert report["matched"] == 9 and report["unmatched"] == 0
    assert report["epe_fwd"] < 0.5 and report["epe_bwd"] < 0.5 and report["epe_fwd_valid"] < 0.5, report
    assert report["valid_share"] > 0.8
    swapped = np.mean([np.linalg.norm(s["flow_bwd"] - truth[k]["flow_fwd"], axis=2).mean() for k, s in got.items()])
    assert swapped > 4 * report["epe_fwd"]


def test_reversed_frames_swap_the_flows(tree, tmp_path, capsys):
    rev = tmp_path / "rev" / "train" / SEQS[0]
    files = frames_of(tree, TRAIN[0])
    for i, f in enumerate(files):
        rev.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, rev / f"{len(files) - i:06d}.png")
    (tmp_path / "one.json").write_text(json.dumps({"train": [SEQS[0]]}))
    for name, root in (("fwd", tree / "gopro"), ("bwd", tmp_path / "rev")):
        code, _, err = blurgen(
            capsys,
            "highspeed",
            root,
            "--out",
            tmp_path / name,
            "--flow",
            "opencv-dis",
            "--split-file",
            tmp_path / "one.json",
            "--batch",
            "3",
        )
        assert code == 0, err
    fwd, bwd = by_window(tmp_path / "fwd"), by_window(tmp_path / "bwd")
    assert len(fwd) == len(bwd) == 3
    for (seq, a, b), s in fwd.items():
        r = bwd[(seq, 22 - b, 22 - a)]  # the same seven frames, played backwards
        assert np.array_equal(r["blurred"], s["blurred"])
        assert np.array_equal(r["flow_fwd"], s["flow_bwd"]) and np.array_equal(r["flow_bwd"], s["flow_fwd"])


def test_random_pwcnet_labels_through_the_batched_pipeline(tree, tmp_path, capsys):
    from blurgen.labels import make_labeller

    (tmp_path / "one.json").write_text(json.dumps({"test": [SEQS[2]]}))
    code, _, err = blurgen(
        capsys,
        "highspeed",
        tree / "gopro",
        "--out",
        tmp_path / "pwc",
        "--flow",
        "pwcnet",
        "--ckpt",
        "random",
        "--split-file",
        tmp_path / "one.json",
        "--max-disp",
        "1e9",
        "--batch",
        "2",
        "--device",
        "cpu",
    )
    assert code == 0, err
    got = samples(tmp_path / "pwc")
    assert [s["meta"]["frames"][0] for s in got] == [1, 8, 15]
    assert all(s["meta"]["labeller"] == "pwcnet" and s["meta"]["checkpoint"] == "random" for s in got)
    manifest = json.loads((tmp_path / "pwc/manifest.json").read_text())
    assert manifest["config"]["checkpoint"] == "random" and manifest["config"]["flow"] == "pwcnet"
    # the shard holds labeller(frame 1, frame 7) and labeller(frame 7, frame 1): random weights are
    # drawn from --seed, so the same labeller can be rebuilt here and run on one pair at a time
    labeller = make_labeller("pwcnet", "random", "cpu", seed=0)
    files = frames_of(tree, TRAIN[2])
    first, last = read_image(files[7]), read_image(files[13])
    fwd, bwd = labeller.flows([first, last], [last, first])
    s = got[1]
    assert s["flow_fwd"].shape == (H, W, 2) and np.isfinite(s["flow_fwd"]).all()
    assert np.abs(fwd).max() > 0.1 and not np.allclose(fwd, bwd, atol=0.1)
    assert np.allclose(s["flow_fwd"], fwd, atol=1e-3) and np.allclose(s["flow_bwd"], bwd, atol=1e-3)
    assert np.array_equal(s["blurred"], average_frames(np.stack([read_image(f) for f in files[7:14]])))


def write_nfs(tree, root):
    """NfS layout: <seq>/240/<seq>/00001.jpg …, plus the 30 fps folder and annotations to ignore."""
    for rel in TRAIN:
        seq = rel.split("/")[1]
        for f in frames_of(tree, rel):
            write_image(root / seq / "240" / seq / f"{int(f.stem):05d}.jpg", read_image(f))
        write_image(root / seq / "30" / seq / "00001.jpg", read_image(f))
        (root / seq / "240" / f"{seq}.txt").write_text("0 0 10 10\n")


def write_video(tree, root):
    for rel in TRAIN:
        root.mkdir(parents=True, exist_ok=True)
        vw = cv2.VideoWriter(str(root / f"{rel.split('/')[1]}.avi"), cv2.VideoWriter_fourcc(*"FFV1"), 240, (W, H))
        for f in frames_of(tree, rel):
            vw.write(cv2.imread(str(f)))
        vw.release()


def write_frames(tree, root):
    """Any folder of numbered frames, named otherwise."""
    for rel in TRAIN:
        folder = root / "clips" / rel.split("/")[1]
        folder.mkdir(parents=True)
        for f in frames_of(tree, rel):
            shutil.copy(f, folder / f"frame_{int(f.stem):04d}.png")


@pytest.mark.parametrize(
    "layout, write, lossless", [("nfs", write_nfs, False), ("video", write_video, True), ("frames", write_frames, True)]
)
def test_other_layouts_are_detected_and_give_the_same_windows(tree, tmp_path, capsys, layout, write, lossless):
    write(tree, tmp_path / "root")
    assert detect_layout(tmp_path / "root") == layout
    seqs = discover(tmp_path / "root", layout)
    names = [s.name for s in seqs]
    assert names == (["clips/" + s for s in SEQS] if layout == "frames" else SEQS)
    assert all(s.numbers == tuple(range(1, 22)) for s in seqs)  # the 30 fps NfS frames are not among them
    code, _, err = blurgen(
        capsys, "highspeed", tmp_path / "root", "--out", tmp_path / "o", "--flow", "opencv-dis", "--keep-frames"
    )
    assert code == 0, err
    truth = by_window(tree / "truth")
    got = samples(tmp_path / "o")
    assert len(got) == 9
    for s in got:
        seq, a, b = s["meta"]["sequence"].split("/")[-1], s["meta"]["frames"][0], s["meta"]["frames"][-1]
        t = truth[(seq, a, b)]
        if lossless:
            png = frames_of(tree, next(r for r in TRAIN if r.endswith(seq)))
            assert np.array_equal(s["blurred"], t["blurred"])
            assert np.array_equal(s["first"], read_image(png[a - 1]))
            assert np.array_equal(s["last"], read_image(png[b - 1]))
        else:  # JPEG: the mean of the decoded JPEG frames, exactly
            jpgs = [read_image(tmp_path / "root" / seq / "240" / seq / f"{i:05d}.jpg") for i in range(a, b + 1)]
            assert np.array_equal(s["blurred"], average_frames(np.stack(jpgs)))
            assert np.abs(s["blurred"].astype(int) - t["blurred"]).mean() < 3


def test_window_count_and_stride():
    seq = Sequence("s", "s", tuple(range(5, 28)), tuple(f"f{i}" for i in range(5, 28)))  # 23 frames
    assert [t.numbers[0] for t in window_tasks(seq)] == [5, 12, 19]  # the last 2 frames make no window
    assert [t.numbers[0] for t in window_tasks(seq, 7, 3)] == [5, 8, 11, 14, 17, 20]
    assert window_tasks(seq, 7, 3)[-1].numbers == tuple(range(20, 27))
    assert [len(t.numbers) for t in window_tasks(seq, 5, 5)] == [5] * 4


def test_linear_light_blur_is_the_gamma_mean(tree):
    files = frames_of(tree, TRAIN[0])
    seq = Sequence("x", "x", tuple(range(1, 22)), tuple(map(str, files)))
    task = window_tasks(seq, gamma=2.2)[1]
    frames = np.stack([read_image(f) for f in files[7:14]])
    got = decode_window(task)["blurred"]
    assert np.array_equal(got, average_frames(frames, 2.2))
    assert np.abs(got.astype(int) - average_frames(frames)).max() > 0  # it is not the sRGB mean


def test_seeded_split_follows_the_paper_share():
    seqs = [Sequence(f"v{i:02d}", "", (1,)) for i in range(33)]
    a, b = split_sequences(seqs, "gopro", seed=1), split_sequences(seqs, "gopro", seed=1)
    assert [len(a["train"]), len(a["test"])] == [25, 8] and a == b
    assert not {s.name for s in a["train"]} & {s.name for s in a["test"]}
    assert split_sequences(seqs, "gopro", seed=2)["test"] != a["test"]
    nfs = split_sequences([Sequence(f"n{i}", "", (1,)) for i in range(100)], "nfs")
    assert [len(nfs["train"]), len(nfs["test"])] == [70, 30]


def corrupt(root):
    (root / "train" / SEQS[0] / "000009.png").write_bytes(b"not a png")


def empty(root):
    (root / "train" / "empty_seq").mkdir()


def short(root):
    for f in sorted((root / "train" / SEQS[1]).glob("*.png"))[5:]:
        f.unlink()


@pytest.mark.parametrize(
    "damage, args, says",
    [
        (None, ["--flow", "opencv-dis"], "{root}/missing: no such folder"),
        (empty, ["--flow", "opencv-dis"], "{root}/train/empty_seq: empty sequence"),
        (short, ["--flow", "opencv-dis"], f"{{root}}/train/{SEQS[1]}: 5 frames, fewer than --window 7"),
        (corrupt, ["--flow", "opencv-dis"], f"{{root}}/train/{SEQS[0]}/000009.png: not a readable image"),
        (None, ["--flow", "no_such_net"], "--flow 'no_such_net': unknown model; `blurgen highspeed --list-flows`"),
        (None, ["--flow", "pwcnet", "--ckpt", "things"], "pass a local checkpoint file with --ckpt PATH"),
    ],
)
def test_bad_input_is_one_line(tree, tmp_path, capsys, monkeypatch, damage, args, says):
    root = tmp_path / "root"
    shutil.copytree(tree / "gopro", root)
    if damage:
        damage(root)
    # offline for sure, even where there is internet: a proxy nobody listens on, an empty hub cache
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    target = root / "missing" if "missing" in says else root
    code, out, err = blurgen(capsys, "highspeed", target, "--out", tmp_path / "o", *args)
    assert code == 2 and out == ""
    assert says.format(root=root) in error_line(err)
    if damage is not corrupt:  # the others fail before a progress bar starts
        assert err.count("\n") == 1, err
    assert not list((tmp_path / "o").glob("*.h5*"))  # no shard, whole or partial


def test_unreadable_frame_can_be_skipped_and_recorded(tree, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(tree / "gopro", root)
    corrupt(root)
    code, _, err = blurgen(
        capsys,
        "highspeed",
        root,
        "--out",
        tmp_path / "o",
        "--flow",
        "opencv-dis",
        "--on-error",
        "skip",
        "--workers",
        "2",
    )
    assert code == 0, err
    assert (SEQS[0], 8, 14) not in by_window(tmp_path / "o") and len(by_window(tmp_path / "o")) == 8
    splits = json.loads((tmp_path / "o/manifest.json").read_text())["splits"]
    skipped = [s for v in splits.values() for s in v["skipped"]]
    assert len(skipped) == 1 and skipped[0]["reason"].startswith(f"unreadable: {SEQS[0]} 8-14: {root}")


def test_a_gap_in_the_numbering_is_never_bridged():
    numbers = (1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)  # frame 5 is missing
    seq = Sequence("s", "seq", numbers, tuple(f"f{i}" for i in numbers))
    with pytest.raises(BlurgenError, match=r"seq: frame 5 is missing \(the window 1-8 would bridge"):
        window_tasks(seq)
    tasks = window_tasks(seq, on_error="skip")
    assert [(t.numbers[0], t.missing) for t in tasks] == [(1, 5), (9, None)]
    assert decode_window(tasks[0]).reason == "missing frame: s 1-8: frame 5"
    tens = Sequence("t", "t", tuple(range(0, 140, 10)), tuple(f"f{i}" for i in range(14)))  # numbered in tens
    assert [t.missing for t in window_tasks(tens)] == [None, None]


def test_a_missing_frame_fails_or_is_recorded_as_a_skip(tree, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(tree / "gopro", root)
    (root / "train" / SEQS[0] / "000004.png").unlink()
    args = ["highspeed", root, "--flow", "opencv-dis"]
    code, out, err = blurgen(capsys, *args, "--out", tmp_path / "fail")
    assert code == 2 and f"{root}/train/{SEQS[0]}: frame 4 is missing" in error_line(err)
    code, out, err = blurgen(capsys, *args, "--out", tmp_path / "skip", "--on-error", "skip")
    assert code == 0, err
    windows = by_window(tmp_path / "skip")
    assert sorted(k for k in windows if k[0] == SEQS[0]) == [(SEQS[0], 9, 15)]  # 1-8 skipped, 16-21 too short
    skipped = [s for v in ShardReader(tmp_path / "skip").manifest["splits"].values() for s in v["skipped"]]
    assert [s["reason"] for s in skipped] == [f"missing frame: {SEQS[0]} 1-8: frame 4"]
