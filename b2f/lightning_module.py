"""B2F-net training as a LightningModule: multi-scale EPE loss, Adam, step-halved learning rate, and the
evaluation metrics on validation crops."""

import lightning as L
import torch

from .data import to_input
from .loss import multiscale_loss
from .metrics import NAMES, flow_metrics
from .model import build_model


class B2FModule(L.LightningModule):
    """``model_config`` is the JSON-able model description (``dataclasses.asdict(ModelConfig)``); it is
    stored in every checkpoint's hyper-parameters, so loading needs no flags.

    ``direction``: "fwd" supervises with flow_fwd (the paper); "min" takes, per sample, the lower of the
    losses against flow_fwd and flow_bwd. A blur looks the same played backwards, so when the data hold no
    cue to time's arrow (random synthetic motion) the fwd loss is the same for any prediction λ·f with
    |λ| ≤ 1 and does not push the flow's magnitude along its axis; "min" does, and matches min-EPE.
    """

    def __init__(
        self,
        model_config: dict,
        lr: float = 1e-4,
        milestones: tuple[int, ...] | list[int] = (),
        lr_gamma: float = 0.5,
        weight_decay: float = 4e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        direction: str = "fwd",
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(dict(model_config))

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        return self.model(image)

    def loss(self, flows: list[torch.Tensor], batch: dict) -> torch.Tensor:
        """The batch's loss; "min" scores every sample against both flows in one batched pass (flows and
        targets stacked as 2B samples) and keeps each sample's lower loss."""
        if self.hparams.direction == "fwd":
            return multiscale_loss(flows, batch["flow_fwd"], batch["valid"])
        both = multiscale_loss(
            [torch.cat((f, f)) for f in flows],
            torch.cat((batch["flow_fwd"], batch["flow_bwd"])),
            torch.cat((batch["valid"], batch["valid"])),
            per_sample=True,
        )
        return both.view(2, -1).amin(0).mean()

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.loss(self.model(to_input(batch["image"])), batch)
        # no host sync per step: the step's value goes to the loggers only every log_every_n_steps; the
        # epoch mean (and the progress bar, once an epoch) is reduced across processes at the epoch's end
        size = len(batch["image"])
        self.log("train/loss_step", loss, on_step=True, on_epoch=False, batch_size=size)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=size, sync_dist=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        pred = self.model.predict(to_input(batch["image"]))
        metrics = flow_metrics(pred, batch["flow_fwd"], batch["flow_bwd"], batch["valid"])
        for name in NAMES:
            values = metrics[name][~metrics[name].isnan()].float()
            if len(values):
                self.log(
                    f"val/{name}", values.mean(), batch_size=len(values), prog_bar=name == "epe_min", sync_dist=True
                )

    def configure_optimizers(self) -> dict:
        hp = self.hparams
        # foreach: one op per update step over all tensors instead of ~10 per tensor (torch's default on a GPU,
        # not on a CPU); same numbers
        optimizer = torch.optim.Adam(
            self.parameters(), lr=hp.lr, betas=tuple(hp.betas), weight_decay=hp.weight_decay, foreach=True
        )
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(hp.milestones), gamma=hp.lr_gamma)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
