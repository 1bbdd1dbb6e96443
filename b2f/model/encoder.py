"""Feature encoder: six blocks of (3×3 conv stride 2, 3×3 conv stride 1), ReLU after each."""

from collections.abc import Sequence

import torch
from torch import nn

from .layers import conv


class Encoder(nn.Module):
    def __init__(self, channels: Sequence[int]):
        super().__init__()
        blocks, in_ch = [], 3
        for out_ch in channels:
            blocks.append(nn.Sequential(conv(in_ch, out_ch, stride=2), conv(out_ch, out_ch)))
            in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Features U_e of levels 1..6 (1/2 .. 1/64 resolution), finest first."""
        feats, x = [], image
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats
