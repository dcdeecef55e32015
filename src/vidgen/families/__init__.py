"""LightningModules, one per generator family; each holds the training logic of its family."""
