"""TensorFlow-1 bilinear resize (align_corners=False, no half-pixel offset), as TF FID does it.

Output pixel i samples the input at i * (in / out): TF1's legacy convention, which torch's
`F.interpolate(..., align_corners=False)` does not follow (it adds a half-pixel offset). The
resize is linear and separable, so it is two small matrix products.
"""

from __future__ import annotations

from functools import lru_cache

import torch


@lru_cache(maxsize=8)
def tf1_bilinear_matrix(in_size: int, out_size: int) -> torch.Tensor:
    """(out_size, in_size) float64 matrix M with resized = M @ signal."""
    scale = in_size / out_size
    source = torch.arange(out_size, dtype=torch.float64) * scale
    lower = source.floor().long().clamp(max=in_size - 1)
    upper = (lower + 1).clamp(max=in_size - 1)
    weight = source - lower
    matrix = torch.zeros(out_size, in_size, dtype=torch.float64)
    rows = torch.arange(out_size)
    matrix.index_put_((rows, lower), 1 - weight, accumulate=True)
    matrix.index_put_((rows, upper), weight, accumulate=True)
    return matrix


def resize_tf1_bilinear(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, size, size), in the dtype of `images`."""
    height, width = images.shape[-2:]
    rows = tf1_bilinear_matrix(height, size).to(images.device, images.dtype)
    cols = tf1_bilinear_matrix(width, size).to(images.device, images.dtype)
    return rows @ images @ cols.T
