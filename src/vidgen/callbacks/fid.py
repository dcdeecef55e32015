"""FID of generated images against the validation images, in a domain classifier's feature space."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException


class FIDCallback(L.Callback):
    """Logs ``val/fid_<feature_extractor>`` after each validation epoch.

    Fréchet Inception Distance (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to
    a Local Nash Equilibrium", NeurIPS 2017, Eq. 6), computed by torchmetrics'
    ``FrechetInceptionDistance`` with vidgen's domain classifier (``vidgen.metrics.features``) as the
    feature network. Real statistics come from the validation images seen in the epoch; as many fakes
    are drawn from a fixed-seed noise generator, so successive epochs are compared on the same codes.

    Args:
        feature_extractor: name of the feature space (its key suffix), e.g. ``digits``.
        every_n_epochs: compute every n validation epochs (FID costs a pass over the fakes).
        seed: seed of the fakes' noise.
    """

    data_kind = "image"

    def __init__(self, feature_extractor: str = "digits", every_n_epochs: int = 1, seed: int = 4321):
        super().__init__()
        self.feature_extractor = feature_extractor
        self.every_n_epochs = every_n_epochs
        self.seed = seed
        self.key = f"val/fid_{feature_extractor}"
        self.fid = None
        self._num_real = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.fid is not None:
            return
        if trainer.datamodule is None:
            raise MisconfigurationException(
                "FIDCallback needs a LightningDataModule (trainer.fit(model, datamodule))."
            )
        from torchmetrics.image.fid import FrechetInceptionDistance

        from vidgen.metrics.features import domain_feature_extractor

        extractor = domain_feature_extractor(trainer.datamodule, self.feature_extractor)
        self.fid = FrechetInceptionDistance(feature=extractor, reset_real_features=True)

    def _active(self, trainer: L.Trainer) -> bool:
        return not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fid.to(pl_module.device).reset()
        self._num_real = 0

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if self._active(trainer):
            self.fid.update(batch[0], real=True)
            self._num_real += len(batch[0])

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._active(trainer) or self._num_real < 2:
            return
        noise = torch.Generator().manual_seed(self.seed)
        remaining = self._num_real
        while remaining > 0:
            n = min(remaining, 256)
            self.fid.update(pl_module.sample(n, generator=noise), real=False)
            remaining -= n
        pl_module.log(self.key, self.fid.compute().float(), prog_bar=True)
