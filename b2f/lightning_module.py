"""B2F-net training as a LightningModule: multi-scale EPE loss, Adam, step-halved learning rate, the
evaluation metrics on validation crops and a picture of a few validation predictions in TensorBoard."""

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from blurgen.core.viz import flow_to_color, label_image, stack_rows

from .data import to_input
from .loss import multiscale_loss
from .metrics import NAMES, flow_metrics
from .model import build_model
from .run_config import WEIGHT_DECAY

PANEL_SAMPLES = 4  # validation samples in the TensorBoard panel: the first ones of the first batch


def prediction_panel(images: np.ndarray, truths: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """One row per sample, blurred | truth | prediction, the two flows on the truth's colour scale (its
    largest |flow|): uint8 RGB. ``images`` B×H×W×3 uint8, ``truths``, ``preds`` B×H×W×2 pixels."""
    rows = []
    for i, (image, truth, pred) in enumerate(zip(images, truths, preds)):
        radius = max(float(np.linalg.norm(truth, axis=2).max()), 1e-6)
        panels = [image, flow_to_color(truth, radius), flow_to_color(pred, radius)]
        if i == 0:
            panels = [label_image(p, text) for p, text in zip(panels, ("blurred", "truth", "prediction"))]
        rows.append(np.concatenate(panels, axis=1))
    return stack_rows(rows)


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
        lr_policy: str = "multistep",
        weight_decay: float = WEIGHT_DECAY,
        betas: tuple[float, float] = (0.9, 0.999),
        direction: str = "fwd",
        bias_decay: bool = True,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(dict(model_config))
        self._panel = None  # the validation panel's arrays, from the epoch's first batch

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
        if batch_idx == 0:
            self._keep_panel(batch, pred, metrics)
        for name in NAMES:
            values = metrics[name][~metrics[name].isnan()].float()
            if len(values):
                self.log(
                    f"val/{name}", values.mean(), batch_size=len(values), prog_bar=name == "epe_min", sync_dist=True
                )

    def _keep_panel(self, batch: dict, pred: torch.Tensor, metrics: dict) -> None:
        """The first samples' image, truth (in the direction min-EPE scores) and prediction, on the host."""
        n = PANEL_SAMPLES
        use_bwd = (metrics["epe_bwd"] < metrics["epe_fwd"])[:n, None, None, None]
        truth = torch.where(use_bwd, batch["flow_bwd"][:n], batch["flow_fwd"][:n])
        flows = (t.permute(0, 2, 3, 1).float().cpu().numpy() for t in (truth, pred[:n]))
        self._panel = [batch["image"][:n].permute(0, 2, 3, 1).cpu().numpy(), *flows]

    def on_validation_epoch_end(self) -> None:
        """The panel of this epoch's predictions to TensorBoard (rank 0's samples; step: the global step)."""
        panel, self._panel = self._panel, None
        if panel is None or not self.trainer.is_global_zero:
            return
        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                image = prediction_panel(*panel)
                logger.experiment.add_image("val/predictions", image, self.global_step, dataformats="HWC")

    def configure_optimizers(self) -> dict:
        hp = self.hparams
        # foreach: one op per update step over all tensors instead of ~10 per tensor (torch's default on a GPU,
        # not on a CPU); same numbers
        params = list(self.parameters())
        if not hp.bias_decay:  # the biases (every 1-d parameter here) out of the L2 term (run_config says why)
            params = [
                {"params": [p for p in params if p.ndim > 1]},
                {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
            ]
        optimizer = torch.optim.Adam(
            params, lr=hp.lr, betas=tuple(hp.betas), weight_decay=hp.weight_decay, foreach=True
        )
        if hp.lr_policy == "onecycle":  # run_config's LR_POLICIES
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer,
                max_lr=hp.lr,
                total_steps=int(self.trainer.estimated_stepping_batches),
                pct_start=0.05,
                anneal_strategy="linear",
                cycle_momentum=False,
            )
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(hp.milestones), gamma=hp.lr_gamma)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
