"""Building blocks shared by the feature decoders and the flow estimator."""

from collections.abc import Sequence

import torch
from torch import nn


def conv(in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1, relu: bool = True) -> nn.Module:
    """3×3 convolution (ReLU after it, as the paper has for every layer but the flow predictions)."""
    layer = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=dilation, dilation=dilation)
    return nn.Sequential(layer, nn.ReLU(inplace=True)) if relu else layer


def deconv(in_ch: int, out_ch: int) -> nn.ConvTranspose2d:
    """The paper's 4×4 stride-2 transposed convolution: exactly doubles the size."""
    return nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1)


def init_weights(module: nn.Module) -> None:
    """He initialisation as in PWC-Net; modules that need a special start are re-initialised afterwards."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in")
            nn.init.zeros_(m.bias)


def init_flow_upsampler(layer: nn.ConvTranspose2d) -> None:
    """Start a 2→2 channel ``deconv`` as bilinear ×2 upsampling that also doubles the values, i.e. a flow in
    pixels of level l+1 becomes the same flow in pixels of level l; training may refine it."""
    k = torch.tensor([0.25, 0.75, 0.75, 0.25])
    with torch.no_grad():
        layer.weight.zero_()
        for c in range(2):
            layer.weight[c, c] = 2 * torch.outer(k, k)
        layer.bias.zero_()


class DenseBlock(nn.Module):
    """Densely connected 3×3 convs (PWC-Net style): each sees the block input and every earlier output.

    Returns the concatenation of all outputs (newest first) and the input: ``out_channels`` channels.
    """

    def __init__(self, in_ch: int, widths: Sequence[int]):
        super().__init__()
        self.convs = nn.ModuleList()
        for w in widths:
            self.convs.append(conv(in_ch, w))
            in_ch += w
        self.out_channels = in_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.convs:
            x = torch.cat((layer(x), x), 1)
        return x
