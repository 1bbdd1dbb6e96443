"""B2F-net training as a LightningModule: multi-scale EPE loss, Adam, step-halved learning rate, and the
evaluation metrics on validation crops."""

import lightning as L
import torch

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
        self, model_config, lr=1e-4, milestones=(), lr_gamma=0.5, weight_decay=4e-4, betas=(0.9, 0.999), direction="fwd"
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(dict(model_config))

    def forward(self, image):
        return self.model(image)

    def loss(self, flows, batch):
        if self.hparams.direction == "fwd":
            return multiscale_loss(flows, batch["flow_fwd"], batch["valid"])
        per_sample = [
            torch.minimum(
                *(
                    multiscale_loss([f[i : i + 1] for f in flows], batch[name][i : i + 1], batch["valid"][i : i + 1])
                    for name in ("flow_fwd", "flow_bwd")
                )
            )
            for i in range(len(batch["image"]))
        ]
        return torch.stack(per_sample).mean()

    def training_step(self, batch, batch_idx):
        loss = self.loss(self.model(batch["image"]), batch)
        self.log(
            "train/loss",
            loss,
            prog_bar=True,
            on_step=True,
            on_epoch=True,
            batch_size=len(batch["image"]),
            sync_dist=True,
        )
        return loss

    def validation_step(self, batch, batch_idx):
        pred = self.model.predict(batch["image"])
        metrics = flow_metrics(pred, batch["flow_fwd"], batch["flow_bwd"], batch["valid"])
        for name in NAMES:
            values = metrics[name][~metrics[name].isnan()].float()
            if len(values):
                self.log(
                    f"val/{name}", values.mean(), batch_size=len(values), prog_bar=name == "epe_min", sync_dist=True
                )

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.Adam(self.parameters(), lr=hp.lr, betas=tuple(hp.betas), weight_decay=hp.weight_decay)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(hp.milestones), gamma=hp.lr_gamma)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
