"""Evaluation built on torchmetrics, and the feature extractors it needs."""
