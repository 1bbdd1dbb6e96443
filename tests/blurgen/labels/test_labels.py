import hashlib

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from blurgen.core.errors import BlurgenError
from blurgen.core.flow import fb_valid
from blurgen.core.quiet import quiet_import
from blurgen.labels import label_samples, make_labeller
from blurgen.labels.ptlflow_labeller import _flownet_correlate, bound_correlation, load_model

PHOTO = cv2.resize(skimage.data.astronaut(), (200, 150), interpolation=cv2.INTER_AREA)


def shifted_pair(dx, dy, h=64, w=96, y0=40, x0=50):
    """Two crops of one photo whose content moves by (dx, dy) whole pixels from the first to the second."""
    return PHOTO[y0 : y0 + h, x0 : x0 + w], PHOTO[y0 - dy : y0 - dy + h, x0 - dx : x0 - dx + w]


@pytest.fixture(scope="module")
def random_pwcnet():
    return make_labeller("pwcnet", "random", "cpu", seed=3)


def test_dis_finds_a_translation_in_the_labelled_direction():
    a, b = shifted_pair(5, -3)
    samples = label_samples(make_labeller("opencv-dis"), [{"first": a, "last": b, "meta": {"sequence": "s"}}])
    s = samples[0]
    inner = (slice(8, -8), slice(8, -8))
    # measured: mean error < 0.02 px; the borders, where content enters or leaves, are left out
    assert np.abs(s["flow_fwd"][inner] - [5, -3]).mean() < 0.1
    assert np.abs(s["flow_bwd"][inner] + [5, -3]).mean() < 0.1
    assert s["valid"][inner].mean() > 0.95 and s["valid"][:, -5:].sum() == 0  # those go out of the frame
    assert s["meta"]["labeller"] == "opencv-dis" and s["meta"]["sequence"] == "s"
    assert s["meta"]["max_flow"] == pytest.approx(np.hypot(5, 3), abs=0.5)


def test_fb_check_marks_the_round_trips_that_fail_or_leave_the_image():
    h, w = 20, 30
    fwd = np.zeros((h, w, 2), np.float32) + [3, 0]
    bwd = np.zeros((h, w, 2), np.float32) - [3, 0]
    valid = fb_valid(fwd, bwd, 1.0)
    assert valid.dtype == np.uint8 and valid.shape == (h, w)
    assert valid[:, : w - 3].all() and not valid[:, w - 3 :].any()  # x + 3 must stay inside [0, w-1]
    bwd[5:10, 10:20] += [0, 1.5]  # the way back misses by 1.5 px where it lands in this block
    valid = fb_valid(fwd, bwd, 1.0)
    assert not valid[5:10, 7:17].any() and valid[5:10, :6].all() and valid[11:, : w - 3].all()
    assert fb_valid(fwd, bwd, 2.0)[:, : w - 3].all()


def test_ptlflow_labeller_pads_small_and_mixed_sizes_and_batches_like_single_pairs(random_pwcnet, monkeypatch):
    a, b = shifted_pair(4, 2)
    c, d = shifted_pair(-3, 1, h=40, w=56)
    batch = random_pwcnet.flows([a, c, b], [b, d, a])
    assert [f.shape for f in batch] == [(64, 96, 2), (40, 56, 2), (64, 96, 2)]
    # without padding to two strides, ptlflow's correlation gives NaN on a 1-pixel coarsest level
    assert all(np.isfinite(f).all() and np.abs(f).max() > 0.01 for f in batch)
    single = random_pwcnet.flows([c], [d])[0]
    assert np.allclose(batch[1], single, atol=1e-4)
    assert not np.allclose(batch[0], batch[2], atol=1e-2)  # order matters: (a, b) is not (b, a)

    forwards = []
    forward = random_pwcnet._forward
    monkeypatch.setattr(random_pwcnet, "_forward", lambda f, l: forwards.append(len(f)) or forward(f, l))
    assert random_pwcnet.pairs_per_forward == 1  # on the CPU
    random_pwcnet.flows([a, c, b], [b, d, a])
    monkeypatch.setattr(random_pwcnet, "pairs_per_forward", None)  # as on a GPU: one forward per image size
    together = random_pwcnet.flows([a, c, b], [b, d, a])
    assert forwards == [1, 1, 1, 2, 1]
    assert all(np.abs(x - y).max() < 1e-5 * np.abs(y).max() for x, y in zip(batch, together))  # float32 sums


def test_local_checkpoint_file_loads_and_is_recorded_by_hash(random_pwcnet, tmp_path):
    path = tmp_path / "pwc.ckpt"
    torch.save({"state_dict": random_pwcnet.model.state_dict()}, path)
    loaded = make_labeller("pwcnet", str(path), "cpu")
    assert loaded.checkpoint == {"path": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    a, b = shifted_pair(2, 2)
    assert np.allclose(loaded.flows([a], [b])[0], random_pwcnet.flows([a], [b])[0], atol=1e-5)
    other = make_labeller("pwcnet", "random", "cpu", seed=4)
    assert not np.allclose(other.flows([a], [b])[0], random_pwcnet.flows([a], [b])[0], atol=1e-3)


@pytest.mark.parametrize(
    "name, ckpt, says",
    [
        ("pwcnet", "nope", "--ckpt 'nope': no such file, and not a checkpoint name of pwcnet (names: things, sintel)"),
        ("raft", "{tmp}/pwc.ckpt", "not a ptlflow checkpoint of raft"),
        ("pwcnet", "{tmp}/junk.ckpt", "not a torch checkpoint"),
        ("pwcnet", "sintel", "cannot download the pwcnet weights"),
        ("pwc_net", "things", "--flow 'pwc_net': unknown model"),
    ],
)
def test_model_and_checkpoint_errors_are_one_line(random_pwcnet, tmp_path, monkeypatch, name, ckpt, says):
    torch.save({"state_dict": random_pwcnet.model.state_dict()}, tmp_path / "pwc.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"\x00" * 100)
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # offline, even where there is internet
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    with pytest.raises(BlurgenError) as e:
        load_model(name, ckpt.format(tmp=tmp_path))
    assert says in str(e.value) and "\n" not in str(e.value)
    if "download" in says:
        assert str(e.value).endswith("pass a local checkpoint file with --ckpt PATH")


def test_chunked_correlation_equals_ptlflows_and_replaces_it_in_flownet():
    flownet = quiet_import("ptlflow.models.flownet.submodules")
    torch.manual_seed(0)
    f1, f2 = torch.randn(2, 16, 12, 20), torch.randn(2, 16, 12, 20)
    whole = flownet.correlate(f1, f2)
    assert whole.shape == (2, 441, 12, 20)
    for chunk in (1, 21, 100):
        assert torch.allclose(_flownet_correlate(f1, f2, chunk), whole, atol=1e-6)
    model = quiet_import("ptlflow").get_model("flownetc").eval()
    x = {"images": torch.rand(1, 2, 3, 128, 128)}
    with torch.inference_mode():
        before = model(dict(x))["flows"]
        bound_correlation(model, 21)
        after = model(dict(x))["flows"]
    assert model.corr is not flownet.correlate and model.corr.keywords == {"chunk": 21}
    assert torch.allclose(before, after, atol=1e-4)


def test_pwcnet_correlation_chunks_without_changing_the_flow(random_pwcnet):
    samplers = [m for m in random_pwcnet.model.modules() if hasattr(m, "chunk_size")]
    assert samplers and all(m.chunk_size == 21 for m in samplers)
    a, b = shifted_pair(3, 1)
    chunked = random_pwcnet.flows([a], [b])[0]
    for m in samplers:
        m.chunk_size = None
    try:
        whole = random_pwcnet.flows([a], [b])[0]
    finally:
        for m in samplers:
            m.chunk_size = 21
    assert np.allclose(chunked, whole, atol=1e-4)
