"""Super SloMo (Jiang et al. 2018), the paper's interpolator: a flow U-Net and an arbitrary-time
flow-refinement U-Net with visibility maps.

Layer names follow the public PyTorch port (avinashpaliwal/Super-SloMo) so that its
``SuperSloMo.ckpt`` (``state_dictFC``, ``state_dictAT``) loads unchanged; so do its input scaling
(RGB in 0..1 minus a per-channel mean, as in its training), its channel order and its zero padding
outside the frame. Two deliberate differences: sizes are padded (replicating the edge) to a multiple
of 32 where that port resizes, so flows stay in the image's pixels; and the warp maps pixel centres
exactly, where the port's normalisation is off by up to a pixel at the far edges.
"""

import datetime
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import BlurgenError, first_line
from ..core.flow import warp

MEAN = (0.429, 0.431, 0.397)  # the training set's mean the public model subtracts
_STRIDE = 32  # five 2× poolings: sizes are padded to a multiple of this


def _lrelu(x):
    return F.leaky_relu(x, negative_slope=0.1)


class _Down(nn.Module):
    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, k, padding=k // 2)
        self.conv2 = nn.Conv2d(cout, cout, k, padding=k // 2)

    def forward(self, x):
        return _lrelu(self.conv2(_lrelu(self.conv1(F.avg_pool2d(x, 2)))))


class _Up(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(2 * cout, cout, 3, padding=1)

    def forward(self, x, skip):
        x = _lrelu(self.conv1(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)))
        return _lrelu(self.conv2(torch.cat((x, skip), 1)))


class UNet(nn.Module):
    """Super SloMo's U-Net: two 7×7 convs, five pooled levels down, five bilinear levels up."""

    DOWN = ((32, 64, 5), (64, 128, 3), (128, 256, 3), (256, 512, 3), (512, 512, 3))
    UP = ((512, 512), (512, 256), (256, 128), (128, 64), (64, 32))

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, 32, 7, padding=3)
        self.conv2 = nn.Conv2d(32, 32, 7, padding=3)
        for i, spec in enumerate(self.DOWN, 1):
            self.add_module(f"down{i}", _Down(*spec))
        for i, spec in enumerate(self.UP, 1):
            self.add_module(f"up{i}", _Up(*spec))
        self.conv3 = nn.Conv2d(32, cout, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [_lrelu(self.conv2(_lrelu(self.conv1(x))))]
        for i in range(1, 6):
            skips.append(getattr(self, f"down{i}")(skips[-1]))
        x = skips.pop()
        for i in range(1, 6):
            x = getattr(self, f"up{i}")(x, skips.pop())
        return _lrelu(self.conv3(x))


def intermediate_flows(
    flow01: torch.Tensor, flow10: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Super SloMo's linear-motion approximation of the flows from time ``t`` (N×1×1×1) to frames 0 and 1."""
    flow_t0 = -(1 - t) * t * flow01 + t * t * flow10
    flow_t1 = (1 - t) * (1 - t) * flow01 - t * (1 - t) * flow10
    return flow_t0, flow_t1


class SuperSloMo(nn.Module):
    def __init__(self):
        super().__init__()
        self.flow_comp = UNet(6, 4)  # state_dictFC: F_0→1 and F_1→0 from the two frames
        self.arb_time = UNet(20, 5)  # state_dictAT: flow residuals at t and the visibility logit

    def interpolator(self, img0: torch.Tensor, img1: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """A function of times (1-D tensor) giving N×3×H×W frames, 0..255, between ``img0`` and
        ``img1`` (1×3×H×W, 0..255); the flows between the two frames are computed once, here."""
        h, w = img0.shape[-2:]
        pad = (0, -w % _STRIDE, 0, -h % _STRIDE)
        mean = torch.tensor(MEAN, device=img0.device).view(1, 3, 1, 1)
        i0, i1 = (F.pad(x / 255.0 - mean, pad, mode="replicate") for x in (img0, img1))
        flows = self.flow_comp(torch.cat((i0, i1), 1))
        f01, f10 = flows[:, :2], flows[:, 2:]

        def frames(times):
            t = times.view(-1, 1, 1, 1).to(i0)
            n = t.shape[0]
            ft0, ft1 = intermediate_flows(f01, f10, t)
            g0, g1 = warp(i0, ft0), warp(i1, ft1)
            out = self.arb_time(
                torch.cat([x.expand(n, -1, -1, -1) for x in (i0, i1, f01, f10)] + [ft1, ft0, g1, g0], 1)
            )
            v0 = torch.sigmoid(out[:, 4:5])
            g0, g1 = warp(i0, ft0 + out[:, :2]), warp(i1, ft1 + out[:, 2:4])
            mix = ((1 - t) * v0 * g0 + t * (1 - v0) * g1) / ((1 - t) * v0 + t * (1 - v0))
            return ((mix + mean) * 255.0)[..., :h, :w]

        return frames


def _check_state(path, key, state, module):
    if not isinstance(state, dict):
        raise BlurgenError(f"{path}: '{key}' is not a state dict; pass the public SuperSloMo.ckpt")
    want = module.state_dict()
    missing = sorted(set(want) - set(state))
    extra = sorted(set(state) - set(want))
    shape = sorted(k for k in set(want) & set(state) if tuple(state[k].shape) != tuple(want[k].shape))
    if missing or extra or shape:
        first = (missing or extra or shape)[0]
        raise BlurgenError(
            f"{path}: '{key}' does not fit Super SloMo's U-Net ({len(missing)} missing, "
            f"{len(extra)} unexpected, {len(shape)} wrongly shaped weights, e.g. '{first}'); "
            "pass the public SuperSloMo.ckpt"
        )


def load_superslomo(path: str | Path, device: torch.device | str) -> SuperSloMo:
    """The model with the weights of ``path`` (keys ``state_dictFC``, ``state_dictAT``), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise BlurgenError(f"{path}: Super SloMo checkpoint not found; pass --ckpt PATH/TO/SuperSloMo.ckpt")
    try:
        # weights_only: never run code from a downloaded file; the public file also stores a datetime.
        with torch.serialization.safe_globals([datetime.datetime]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises pickle, zip and runtime errors alike
        raise BlurgenError(f"{path}: not a readable torch checkpoint ({first_line(e)})") from None
    model = SuperSloMo()
    for key, module in (("state_dictFC", model.flow_comp), ("state_dictAT", model.arb_time)):
        if not isinstance(ckpt, dict) or key not in ckpt:
            raise BlurgenError(f"{path}: no '{key}' in this checkpoint; pass the public SuperSloMo.ckpt")
        _check_state(path, key, ckpt[key], module)
        module.load_state_dict(ckpt[key])
    return model.to(device).eval()
