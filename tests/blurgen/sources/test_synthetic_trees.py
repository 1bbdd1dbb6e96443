"""`blurgen synthetic --frames-layout nfs|sceneflow`: the real loaders (`blurgen highspeed`, `blurgen
monkaa`) run on the trees and read what the exact shards beside them hold."""

import numpy as np
import pytest
from helpers import blurgen, error_line

from blurgen.audit import audit
from blurgen.cli import main
from blurgen.core.images import read_image
from blurgen.shards import ShardReader
from blurgen.sources.highspeed import detect_layout, discover

SIZE = 64
SEQS = ["synthetic_000000", "synthetic_000001", "synthetic_000002"]


def samples(out):
    r = ShardReader(out)
    return [r.read(i, fields=r.fields(i)) for i in range(len(r))]


def by_window(out):
    return {(s["meta"]["sequence"], s["meta"]["frames"][0], s["meta"]["frames"][-1]): s for s in samples(out)}


def synthetic(root, layout, *args):
    main(
        ["synthetic", "--out", str(root / "truth"), "--frames-out", str(root / layout), "--frames-layout", layout]
        + ["--count", "2", "--test-count", "1", "--size", f"{SIZE}x{SIZE}", "--keep-frames", *args]
    )
    return root


@pytest.fixture(scope="module")
def nfs(tmp_path_factory):
    """3 sequences of 3 windows of 7 frames."""
    return synthetic(tmp_path_factory.mktemp("nfs"), "nfs", "--windows", "3", "--max-disp", "10")


@pytest.fixture(scope="module")
def sceneflow(tmp_path_factory):
    """3 scenes of 8 frames; windows of 2, so every other frame pair has an exact sample."""
    return synthetic(tmp_path_factory.mktemp("sf"), "sceneflow", "--window", "2", "--windows", "4", "--max-disp", "6")


def test_nfs_tree_is_discovered_and_highspeed_blurs_it_exactly(nfs, tmp_path, capsys):
    assert detect_layout(nfs / "nfs") == "nfs"
    seqs = discover(nfs / "nfs", "nfs")
    assert [s.name for s in seqs] == SEQS and all(s.numbers == tuple(range(1, 22)) for s in seqs)
    assert seqs[0].paths[0] == str(nfs / "nfs" / SEQS[0] / "240" / SEQS[0] / "00001.png")
    code, out, err = blurgen(
        capsys, "highspeed", nfs / "nfs", "--layout", "nfs", "--out", tmp_path / "hs", "--flow", "opencv-dis"
    )
    assert code == 0, err
    assert out.strip().startswith(f"{tmp_path / 'hs'}: 9 samples of 9 windows (nfs, 3 sequences")
    got, truth = by_window(tmp_path / "hs"), by_window(nfs / "truth")
    assert sorted(got) == sorted(truth) == sorted((s, a, a + 6) for s in SEQS for a in (1, 8, 15))
    for key, s in got.items():
        assert np.array_equal(s["blurred"], truth[key]["blurred"])  # the same mean of the same lossless frames
    # DIS is not exact: measured EPE 0.19 px over flows up to 10 px
    report = audit(tmp_path / "hs", nfs / "truth")
    assert report["matched"] == 9 and report["epe_fwd"] < 0.5 and report["epe_bwd"] < 0.5, report


def read_pfm(path):
    """A PFM file by its definition: 'PF' (3 channels), width height, scale (< 0: little-endian),
    float32 rows from the bottom of the image to the top."""
    data = path.read_bytes()
    tag, dims, scale, body = data.split(b"\n", 3)
    w, h = map(int, dims.split())
    assert tag == b"PF" and float(scale) < 0 and len(body) == 12 * w * h
    return np.frombuffer(body, "<f4").reshape(h, w, 3)[::-1, :, :2]


def test_sceneflow_tree_holds_the_exact_flow_of_every_pair_and_monkaa_reads_it(sceneflow, tmp_path, capsys):
    root, truth = sceneflow / "sceneflow", by_window(sceneflow / "truth")
    assert len(truth) == 12  # 3 scenes x 4 windows of frames (2w, 2w+1)
    flows = root / "optical_flow"
    for (seq, a, b), t in truth.items():
        scene = seq.split("/")[0]
        assert seq == f"{scene}/left" and b == a + 1
        future = read_pfm(flows / scene / "into_future" / "left" / f"OpticalFlowIntoFuture_{a:04d}_L.pfm")
        past = read_pfm(flows / scene / "into_past" / "left" / f"OpticalFlowIntoPast_{b:04d}_L.pfm")
        assert np.array_equal(future, t["flow_fwd"]) and np.array_equal(past, t["flow_bwd"])
        frames = root / "frames_cleanpass" / scene / "left"
        assert np.array_equal(read_image(frames / f"{a:04d}.png"), t["first"])
        assert np.array_equal(read_image(frames / f"{b:04d}.png"), t["last"])
    code, out, err = blurgen(capsys, "monkaa", root, "--camera", "left", "--out", tmp_path / "mk", "--keep-frames")
    assert code == 0, err
    assert f"{tmp_path / 'mk'}: 21 samples" in out  # 7 pairs per scene, none over the default --max-disp 100
    got = samples(tmp_path / "mk")
    assert sorted((s["meta"]["scene"], s["meta"]["frames"][0]) for s in got) == [
        (scene, t) for scene in SEQS for t in range(7)
    ]
    exact = 0
    for s in got:
        key = (f"{s['meta']['scene']}/left", *s["meta"]["frames"])
        if key in truth:
            exact += 1
            for field in ("flow_fwd", "flow_bwd", "first", "last"):
                assert np.array_equal(s[field], truth[key][field]), field
    assert exact == 12
    report = audit(tmp_path / "mk", sceneflow / "truth")
    assert report["matched"] == 12 and report["epe_fwd"] == 0 and report["epe_bwd"] == 0


def test_a_tree_layout_without_a_tree_is_one_line(tmp_path, capsys):
    code, _, err = blurgen(capsys, "synthetic", "--out", tmp_path / "o", "--count", "1", "--frames-layout", "nfs")
    assert code == 2 and error_line(err) == "error: --frames-layout nfs needs --frames-out DIR for the frame tree"
    assert not (tmp_path / "o").exists()
