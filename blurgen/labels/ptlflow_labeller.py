"""Any ptlflow model as a batched labeller on the device, with bounded correlation memory."""

import contextlib
import functools
import hashlib
import io
import pickle
import sys
from pathlib import Path

import numpy as np
import torch

from ..core.device import resolve_device
from ..core.errors import BlurgenError, first_line
from ..core.files import file_digest
from ..core.quiet import quiet_import

RANDOM = "random"  # --ckpt value for untrained weights (plumbing tests, never real labels)
LIST_HINT = "`blurgen highspeed --list-flows` lists the names"


class _OneWriteLate(io.TextIOBase):
    """A stream that passes each write on when the next one comes: torch.hub's 'Downloading: …' line
    then shows once the download makes progress, and an offline failure stays the one error line."""

    def __init__(self, target):
        self.target, self.held = target, ""

    def write(self, text):
        self.target.write(self.held)
        self.held = text
        return len(text)

    def flush(self):
        self.target.flush()

    def release(self):
        self.write("")


def _flownet_correlate(input1, input2, chunk):
    """ptlflow's FlowNetC ``correlate`` (21×21 displacements, dilation 2, mean over channels) with
    the cost volume built ``chunk`` displacements at a time: its pure-PyTorch sampler otherwise
    materialises all 441 shifted copies of the features at once (~11 GB at 448×1024)."""
    correlation = quiet_import("ptlflow.utils.correlation")
    corr = correlation.iter_spatial_correlation_sample(
        input1, input2, kernel_size=1, patch_size=21, stride=1, padding=0, dilation_patch=2, chunk_size=chunk
    )
    b, ph, pw, h, w = corr.shape
    return corr.view(b, ph * pw, h, w) / input1.size(1)


def bound_correlation(model: "torch.nn.Module", chunk: int) -> "torch.nn.Module":
    """Make every pure-PyTorch correlation in ``model`` work ``chunk`` displacements at a time
    (results unchanged). The compiled sampler, when installed, needs no bound and is left alone."""
    correlation = quiet_import("ptlflow.utils.correlation")
    samplers = (correlation.IterSpatialCorrelationSampler, correlation.IterTranslatedSpatialCorrelationSampler)
    flownet = sys.modules.get("ptlflow.models.flownet.submodules")
    for m in model.modules():
        if isinstance(m, samplers):
            m.chunk_size = chunk
        elif (
            flownet is not None
            and getattr(m, "corr", None) is flownet.correlate
            and flownet.spatial_correlation_sample is correlation.iter_spatial_correlation_sample
        ):
            m.corr = functools.partial(_flownet_correlate, chunk=chunk)
    return model


def _checkpoint(ptlflow, name, ckpt):
    """(ckpt_path for ptlflow.get_model, JSON record of it) for a file, a checkpoint name or 'random'."""
    if ckpt is None or ckpt == RANDOM:
        return None, RANDOM
    if Path(ckpt).is_file():
        return str(ckpt), {"path": str(Path(ckpt).resolve()), "sha256": file_digest(ckpt, hashlib.sha256)}
    names = getattr(ptlflow.get_model_reference(name), "pretrained_checkpoints", {}) or {}
    if ckpt not in names:
        raise BlurgenError(
            f"--ckpt '{ckpt}': no such file, and not a checkpoint name of {name} "
            f"(names: {', '.join(names) or 'none'}); pass a local checkpoint file with --ckpt PATH"
        )
    return ckpt, {"name": ckpt, "url": names[ckpt]}


def load_model(name: str, ckpt: str | None = None, seed: int = 0) -> tuple["torch.nn.Module", dict | str]:
    """A ptlflow model in eval mode and the record of its weights; every failure is one line.
    Random weights come from ``seed`` (a resumed run must label with the same ones)."""
    ptlflow = quiet_import("ptlflow")
    quiet_import("loguru").logger.disable("ptlflow")  # "Restored model state…" would interleave with tqdm
    if name not in ptlflow.get_model_names():
        raise BlurgenError(f"--flow '{name}': unknown model; {LIST_HINT}, or use opencv-dis (no weights)")
    path, record = _checkpoint(ptlflow, name, ckpt)
    console = _OneWriteLate(sys.stderr)  # stdout too: it is for results, and torch.hub talks there
    try:
        torch = quiet_import("torch")
        with contextlib.redirect_stdout(console), contextlib.redirect_stderr(console), torch.random.fork_rng():
            torch.manual_seed(seed)
            model = ptlflow.get_model(name, ckpt_path=path)
        console.release()
    except OSError as e:  # URLError, timeouts, a read error
        if isinstance(record, dict) and "name" in record:
            raise BlurgenError(
                f"--ckpt '{ckpt}': cannot download the {name} weights ({type(e).__name__}; "
                "offline?); pass a local checkpoint file with --ckpt PATH"
            ) from None
        raise BlurgenError(f"{ckpt}: cannot read the checkpoint ({e}); pass a ptlflow .ckpt file") from None
    except (pickle.UnpicklingError, EOFError):
        raise BlurgenError(
            f"{ckpt}: not a torch checkpoint (torch.load refuses it); pass a ptlflow .ckpt file"
        ) from None
    except (RuntimeError, KeyError, ValueError) as e:
        raise BlurgenError(
            f"{ckpt}: not a ptlflow checkpoint of {name} ({first_line(e)}); "
            "pass a file holding {'state_dict': …} for this model"
        ) from None
    return model.eval(), record


class PtlflowLabeller:
    """Batched inference of a ptlflow model (one pair per forward on a CPU): images go in as BGR in
    [0, 1], ``{"images": B×2×3×H×W}``, padded (replicate) to the model's stride, at least two strides:
    ptlflow's pure-PyTorch correlation divides by (size - 1) and gives NaN on a 1-pixel coarsest level."""

    def __init__(self, name: str, ckpt: str | None = None, device: str = "auto", corr_chunk: int = 21, seed: int = 0):
        self.torch = quiet_import("torch")
        self.device = resolve_device(device)
        model, self.checkpoint = load_model(name, ckpt, seed)
        self.model = bound_correlation(model, corr_chunk).to(self.device)
        self.name = name
        self.stride = int(getattr(model, "output_stride", 8) or 8)
        # a GPU needs batches to fill it; on a CPU several 720p pairs in one forward are slower per pair
        # than one at a time (0.27 vs 0.35 pairs/s for 4 pwcnet pairs on 2 cores)
        self.pairs_per_forward = 1 if self.device.type == "cpu" else None

    def _forward(self, firsts, lasts):
        torch, F = self.torch, self.torch.nn.functional
        h, w = firsts[0].shape[:2]
        hp, wp = (max(-(-n // self.stride), 2) * self.stride for n in (h, w))
        pairs = torch.from_numpy(np.stack([np.stack(firsts), np.stack(lasts)], axis=1)).to(self.device)
        x = pairs.flip(-1).permute(0, 1, 4, 2, 3).float().div_(255)  # RGB uint8 -> BGR float, B×2×3×H×W
        b = x.shape[0]
        x = F.pad(x.reshape(b * 2, 3, h, w), (0, wp - w, 0, hp - h), mode="replicate").reshape(b, 2, 3, hp, wp)
        with torch.inference_mode():
            flow = self.model({"images": x})["flows"][:, 0, :, :h, :w]
        return list(flow.permute(0, 2, 3, 1).float().cpu().numpy())

    def flows(self, firsts: list[np.ndarray], lasts: list[np.ndarray]) -> list[np.ndarray]:
        out = [None] * len(firsts)
        groups = {}
        for i, f in enumerate(firsts):  # one forward per image size in the batch
            groups.setdefault(f.shape, []).append(i)
        for idx in groups.values():
            step = self.pairs_per_forward or len(idx)
            for part in (idx[k : k + step] for k in range(0, len(idx), step)):
                for i, flow in zip(part, self._forward([firsts[i] for i in part], [lasts[i] for i in part])):
                    out[i] = np.ascontiguousarray(flow)
        return out
