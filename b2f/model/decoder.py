"""Feature decoder: turns the encoded blurred-image pyramid into the features of one sharp end frame.

Per level l, coarse to fine: an STN warps U_e^l by a global affine transform (non-local motion) → U_t^l,
then the refining block R^l (5 densely connected 3×3 convs) over concat(U_t^l, U_e^l, deconv↑(V^{l+1}))
gives V^l, with the same width as U_e^l (so both ablations leave every other layer's shape unchanged).
"""

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .layers import DenseBlock, conv, deconv


class STN(nn.Module):
    """Affine spatial transformer. The localisation net ends in global average pooling, so it takes any
    input size; its last layer starts at zero weight and identity bias, i.e. as the identity transform."""

    def __init__(self, in_ch: int, width: int):
        super().__init__()
        self.features = nn.Sequential(
            conv(in_ch, width, stride=2),
            conv(width, width, stride=2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width, width),
            nn.ReLU(inplace=True),
        )
        self.theta = nn.Linear(width, 6)
        with torch.no_grad():
            self.theta.weight.zero_()
            self.theta.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Under mixed precision the whole STN runs in float32. The transform, grid and sampling: a bf16
        scale of 1 is only known to 1/128, i.e. 2 px at the edge of a 512-wide map, and bf16 grid coordinates
        cannot tell neighbouring columns apart past 256 pixels (the same reason blurgen.core.flow.warp builds
        its grid in float32). The localisation convs: under CPU bf16 autocast, torch gives a stride-2 conv on
        a 1-pixel map garbage weight gradients where its taps only see padding, and the coarsest level's
        maps are that small (it turned those weights NaN in a 6,000-step run); they are two small convs."""
        with torch.autocast(x.device.type, enabled=False):
            source = x.float()
            theta = self.theta(self.features(source)).view(-1, 2, 3)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            out = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out.to(x.dtype)


class RefiningBlock(nn.Module):
    """Five densely connected 3×3 convs: four of ``growth`` channels, the fifth maps all of them to V^l."""

    def __init__(self, in_ch: int, growth: int, out_ch: int):
        super().__init__()
        self.dense = DenseBlock(in_ch, (growth,) * 4)
        self.out = conv(self.dense.out_channels, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.dense(x))


class FeatureDecoder(nn.Module):
    """Decodes one end frame (first or last); the model holds two with separate weights."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        ch = cfg.enc_channels
        self.stns = nn.ModuleList(STN(c, cfg.stn_channels) for c in ch) if cfg.stn else None
        if cfg.rb:
            # level l gets ↑V^{l+1} (none at the coarsest level) beside U_t^l and U_e^l
            self.ups = nn.ModuleList(deconv(ch[l + 1], ch[l]) for l in range(len(ch) - 1))
            self.rbs = nn.ModuleList(
                RefiningBlock(2 * c + (c if l < len(ch) - 1 else 0), g, c)
                for l, (c, g) in enumerate(zip(ch, cfg.rb_growth))
            )
        else:
            self.ups = self.rbs = None

    def forward(self, encoded: list[torch.Tensor]) -> list[torch.Tensor]:
        """``encoded``: U_e of levels 1..6, finest first -> V of levels 1..6, finest first."""
        decoded, coarser = [None] * len(encoded), None
        for l in reversed(range(len(encoded))):
            u_e = encoded[l]
            u_t = self.stns[l](u_e) if self.stns is not None else u_e
            if self.rbs is None:
                decoded[l] = u_t
                continue
            parts = (u_t, u_e) if coarser is None else (u_t, u_e, self.ups[l](coarser))
            decoded[l] = coarser = self.rbs[l](torch.cat(parts, 1))
        return decoded
