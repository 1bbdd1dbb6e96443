"""The model's hyper-parameters, stored in checkpoints as JSON (``dataclasses.asdict``).

Per-level tuples are indexed finest first: entry 0 is level 1 (1/2 resolution), entry 5 is level 6 (1/64).
"""

from dataclasses import dataclass, fields, replace

LEVELS = 6


@dataclass(frozen=True)
class ModelConfig:
    """``arch``: "b2f" (decode first/last-frame features, correlate them) or "unet" (flow from encoder
    features alone); ``stn``/``rb``: the paper's ablation switches (ignored by "unet")."""

    arch: str = "b2f"
    stn: bool = True
    rb: bool = True
    # PWC-Net's pyramid widths; decoded features keep them, so removing the refining block changes nothing else
    enc_channels: tuple = (16, 32, 64, 96, 128, 196)
    # growth of the refining block's four inner convs: half the level's width, at least 16, at most 64
    rb_growth: tuple = (16, 16, 32, 48, 64, 64)
    stn_channels: int = 32
    # Dense flow decoder per level: PWC-Net's (128, 128, 96, 64, 32) at levels 3-6, halved at level 2 and
    # quartered at level 1 (1/4 and 1/2 resolution hold 94% of the pixels), but no conv narrower than 16
    # (8-wide outputs run at a third of the GFLOP/s); the context network, at level 1, is PWC-Net's halved.
    # bench/model.py measures this against PWC-Net's widths everywhere ("b2f-wide").
    flow_widths: tuple = ((32, 32, 24, 16, 16), (64, 64, 48, 32, 16)) + ((128, 128, 96, 64, 32),) * 4
    context_widths: tuple = (64, 64, 64, 48, 32, 16)
    corr_range: int = 4

    def __post_init__(self):
        if self.arch not in ("b2f", "unet"):
            raise ValueError(f"unknown arch '{self.arch}'; use b2f or unet")
        # JSON turns tuples into lists; freeze them back so configs compare and hash equal
        for name in ("enc_channels", "rb_growth", "flow_widths", "context_widths"):
            value = getattr(self, name)
            frozen = tuple(tuple(v) if isinstance(v, (list, tuple)) else v for v in value)
            object.__setattr__(self, name, frozen)
        for name in ("enc_channels", "rb_growth", "flow_widths"):
            if len(getattr(self, name)) != LEVELS:
                raise ValueError(f"{name} needs {LEVELS} entries (finest level first), got {len(getattr(self, name))}")
        if len(self.context_widths) != 6:
            raise ValueError("context_widths needs 6 entries (the dilated convs before the prediction conv)")

    def narrowed(self, width: float) -> "ModelConfig":
        """Every layer's width times ``width``, rounded down to a multiple of 4, no encoder level narrower than 8 and
        no other conv narrower than 16 (narrower ones run at a fraction of the GFLOP/s); the STNs kept.

        Why: on a CPU budget a narrower net takes more steps in the same time (README, "Cross-generator
        generalization": width 0.5 runs about 2x the steps of the paper's widths and generalized better).
        """

        def scaled(values, floor):
            return tuple(max(floor, int(v * width) // 4 * 4) for v in values)

        return replace(
            self,
            enc_channels=scaled(self.enc_channels, 8),
            rb_growth=scaled(self.rb_growth, 16),
            flow_widths=tuple(scaled(level, 16) for level in self.flow_widths),
            context_widths=scaled(self.context_widths, 16),
        )

    @classmethod
    def from_dict(cls, config: dict) -> "ModelConfig":
        """Build from a (JSON-loaded) dict; unknown keys are an error, missing ones take their defaults."""
        unknown = set(config) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}")
        return cls(**config)
