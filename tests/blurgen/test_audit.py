import json

import numpy as np
import pytest

from blurgen.audit import audit
from blurgen.cli import main
from blurgen.core.errors import BlurgenError
from blurgen.generate import generate
from blurgen.shards import ShardReader

OFFSET = np.float32([3, 4])  # |OFFSET| = 5 px


def pseudo_from(truth, out, damage, extra=None):
    """Shards holding the truth samples with ``damage(sample)`` applied, plus ``extra`` samples."""
    reader = ShardReader(truth)

    def render(i):
        if i >= len(reader):
            return extra
        s = reader.read(i)
        damage(s)
        s["meta"]["labeller"] = "fake"
        return s

    generate(out, "pseudo", {}, {"train": list(range(len(reader) + (extra is not None)))}, render)
    return out


def offset_left_half(s):
    """flow_fwd off by 5 px on the left half, which is marked invalid; flow_bwd off by 1 px everywhere."""
    w = s["flow_fwd"].shape[1]
    s["flow_fwd"][:, : w // 2] += OFFSET
    s["flow_bwd"] += np.float32([1, 0])
    s["valid"][:] = 1
    s["valid"][:, : w // 2] = 0


def test_epe_against_exact_truth_is_the_known_error(make_synthetic, tmp_path):
    truth = make_synthetic(4, size=(48, 64))
    stray = {**ShardReader(truth).read(0), "meta": {"sequence": "elsewhere", "frames": [0, 8]}}
    pseudo = pseudo_from(truth, tmp_path / "p", offset_left_half, extra=stray)
    r = audit(pseudo, truth)
    assert r["matched"] == 4 and r["unmatched"] == 1 and r["labeller"] == "fake"
    assert r["epe_fwd"] == pytest.approx(2.5, abs=1e-5)  # 5 px on half the pixels
    assert r["epe_fwd_valid"] == pytest.approx(0, abs=1e-6) and r["epe_fwd_rejected"] == pytest.approx(5, abs=1e-5)
    assert r["epe_bwd"] == pytest.approx(1, abs=1e-5) and r["valid_share"] == pytest.approx(0.5)
    assert sorted(row["sequence"] for row in r["samples"]) == [f"synthetic_{i:06d}" for i in range(4)]


def test_cli_compares_runs_side_by_side(make_synthetic, tmp_path, capsys):
    truth = make_synthetic(4, size=(48, 64))
    exact = pseudo_from(truth, tmp_path / "exact", lambda s: None)
    off = pseudo_from(truth, tmp_path / "off", offset_left_half)
    main(["audit", str(exact), str(off), "--truth", str(truth), "--json", str(tmp_path / "a.json")])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:4] == ["shards", "labeller", "matched", "epe_fwd"] and len(lines) == 3
    assert [float(x) for x in lines[1].split()[2:5]] == [4, 0, 0]  # matched, epe_fwd, epe_bwd
    assert [float(x) for x in lines[2].split()[2:5]] == [4, 2.5, 1]
    reports = json.loads((tmp_path / "a.json").read_text())
    assert [len(r["samples"]) for r in reports] == [4, 4]


def test_shards_of_other_frames_are_refused(make_synthetic, tmp_path):
    truth, other = make_synthetic(3, size=(48, 64)), make_synthetic(2, size=(48, 64), seed=5)
    moved = pseudo_from(other, tmp_path / "p", lambda s: s["meta"].update(sequence="x"))
    with pytest.raises(BlurgenError, match="no sample matches"):
        audit(moved, truth)
    bigger = make_synthetic(2, size=(40, 64))
    with pytest.raises(BlurgenError, match=r"is \(40, 64\) but its truth .* is \(48, 64\)"):
        audit(bigger, truth)
