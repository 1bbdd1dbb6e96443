"""B2F-net: encoder → two feature decoders (first / last frame) → flow estimator; and the U-net ablation."""

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .decoder import FeatureDecoder
from .encoder import Encoder
from .estimator import FlowEstimator
from .layers import init_weights

STRIDE = 64  # six stride-2 levels


class B2FNet(nn.Module):
    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        cfg = cfg or ModelConfig()
        self.cfg = cfg
        self.encoder = Encoder(cfg.enc_channels)
        if cfg.arch == "b2f":
            self.decode_first, self.decode_last = FeatureDecoder(cfg), FeatureDecoder(cfg)
        self.estimator = FlowEstimator(cfg, correlate=cfg.arch == "b2f")
        init_weights(self)  # convolutions only: the STNs' identity start (linear layers) stays
        self.estimator.reset_upsamplers()

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """``image``: B×3×H×W RGB in [0, 1], H and W multiples of 64.

        Returns the 6 supervised flows, coarsest first: entry i is level 6 - i, of size H/2^(6-i) × W/2^(6-i),
        in pixels of ITS OWN grid (full-resolution pixels / 2^(6-i)); the last (1/2 resolution) includes the
        context network's refinement.
        """
        if image.shape[-2] % STRIDE or image.shape[-1] % STRIDE:
            raise ValueError(
                f"B2FNet.forward needs H and W divisible by {STRIDE}, got {tuple(image.shape[-2:])}; "
                "use predict() for other sizes"
            )
        encoded = self.encoder(image - 0.5)  # centred input; no other normalisation
        if self.cfg.arch == "unet":
            return self.estimator(encoded)
        return self.estimator(self.decode_first(encoded), self.decode_last(encoded))

    @torch.no_grad()
    def predict(self, image: torch.Tensor) -> torch.Tensor:
        """B×2×H×W flow in full-resolution pixels for any H, W (replicate-pads to a multiple of 64, crops back).

        The finest estimate (1/2 resolution) is upsampled bilinearly and its values doubled.
        """
        height, width = image.shape[-2:]
        pad_h, pad_w = -height % STRIDE, -width % STRIDE
        padded = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else image
        flow = self(padded)[-1]
        flow = 2 * F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=False)
        return flow[:, :, :height, :width]


def build_model(config: dict | ModelConfig) -> nn.Module:
    """A B2FNet from ``dataclasses.asdict(ModelConfig)`` (e.g. read back from a checkpoint's JSON)."""
    return B2FNet(ModelConfig.from_dict(dict(config)))
