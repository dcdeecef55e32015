"""vidgen: configuration-driven experiments for generative models of images and video.

Kept import-light on purpose: entrypoints import torch/Lightning themselves, and optional heavy
dependencies (wandb, torchmetrics, scikit-learn) are imported only where they are used.
"""

__version__ = "0.1.0"
