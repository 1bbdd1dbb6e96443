"""PWC-style coarse-to-fine flow estimator over the decoded first/last-frame pyramids.

Per level l, coarse to fine: warp V_2^l by ↑f^{l+1}; cost volume C(V_1^l, warped V_2^l); dense decoder
D^l over concat(C, V_1^l, ↑V_f^{l+1}, ↑f^{l+1}); prediction conv → f^l. At the finest level a context
network (dilations 1, 2, 4, 8, 16, 1, 1) over concat(V_f^1, f^1) adds a residual to f^1. The cost volume
goes through a leaky ReLU (0.1) as in PWC-Net, since a plain ReLU would drop all anti-correlation; every
other layer but the flow predictions has the paper's ReLU.

Every f^l is in pixels of its own level's grid, so warping needs no rescaling and the ↑ deconv starts as
"bilinear ×2, values ×2" (see layers.init_flow_upsampler).

Without correlation (``correlate=False``) the same stack is the U-net ablation's decoder: D^l then sees
concat(U_e^l, ↑V_f^{l+1}, ↑f^{l+1}) only.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from blurgen.core.flow import warp

from .config import ModelConfig
from .correlation import correlation
from .layers import DenseBlock, conv, deconv, init_flow_upsampler


class ContextNetwork(nn.Module):
    DILATIONS = (1, 2, 4, 8, 16, 1)

    def __init__(self, in_ch: int, widths: Sequence[int]):
        super().__init__()
        layers = []
        for width, dilation in zip(widths, self.DILATIONS):
            layers.append(conv(in_ch, width, dilation=dilation))
            in_ch = width
        layers.append(conv(in_ch, 2, relu=False))  # the 7th, dilation 1: the flow residual
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FlowEstimator(nn.Module):
    def __init__(self, cfg: ModelConfig, correlate: bool = True):
        super().__init__()
        self.radius = cfg.corr_range if correlate else None
        n_corr = (2 * cfg.corr_range + 1) ** 2 if correlate else 0
        coarsest = len(cfg.enc_channels) - 1
        self.decoders, self.predictors = nn.ModuleList(), nn.ModuleList()
        self.up_flows, self.up_feats = nn.ModuleList(), nn.ModuleList()
        for l, (ch, widths) in enumerate(zip(cfg.enc_channels, cfg.flow_widths)):
            dense = DenseBlock(n_corr + ch + (4 if l < coarsest else 0), widths)
            self.decoders.append(dense)
            self.predictors.append(conv(dense.out_channels, 2, relu=False))
            if l > 0:  # up_*[l - 1] lift level l's outputs to level l - 1
                self.up_flows.append(deconv(2, 2))
                self.up_feats.append(deconv(dense.out_channels, 2))
        self.context = ContextNetwork(self.decoders[0].out_channels + 2, cfg.context_widths)

    def reset_upsamplers(self) -> None:
        for layer in self.up_flows:
            init_flow_upsampler(layer)

    def forward(self, first: list[torch.Tensor], last: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """``first`` (and ``last`` when correlating): feature pyramids finest first.

        Returns flows f^6 .. f^1, coarsest first, each in pixels of its level.
        """
        flows, flow, feat = [], None, None
        for l in reversed(range(len(first))):
            parts = [first[l]]
            if flow is not None:
                flow = self.up_flows[l](flow)
                parts += [self.up_feats[l](feat), flow]
            if self.radius is not None:
                target = last[l] if flow is None else warp(last[l], flow)
                parts.insert(0, F.leaky_relu(correlation(first[l], target, self.radius), 0.1))
            feat = self.decoders[l](torch.cat(parts, 1))
            flow = self.predictors[l](feat)
            if l == 0:
                flow = flow + self.context(torch.cat((feat, flow), 1))
            flows.append(flow)
        return flows
