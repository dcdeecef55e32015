"""LightningDataModules, one module per dataset family.

Batch layout used everywhere: images are ``(B, C, H, W)``; videos are ``(B, T, C, H, W)``. Pixel values
are scaled to ``value_range`` (``[-1, 1]`` by default, the range of a tanh generator).
"""
