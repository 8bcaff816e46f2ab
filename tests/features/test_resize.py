"""The TF1 bilinear resize equals torch-fidelity's reimplementation of TensorFlow 1.x."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from evaluator.features.resize import resize_tf1_bilinear, tf1_bilinear_matrix


@pytest.mark.parametrize("shape,size", [((4, 3, 28, 28), 299), ((2, 1, 37, 23), 50), ((1, 1, 8, 8), 3)])
def test_matches_torch_fidelity(shape, size):
    torch.manual_seed(0)
    images = torch.rand(shape, dtype=torch.float64)
    expected = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(size, size),
                                                         align_corners=False).double()
    torch.testing.assert_close(resize_tf1_bilinear(images, size), expected, atol=1e-5, rtol=0)


def test_differs_from_torch_half_pixel_convention():
    images = torch.rand(1, 1, 28, 28, dtype=torch.float64)
    torch_style = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
    assert (resize_tf1_bilinear(images, 299) - torch_style).abs().max() > 1e-3


def test_rows_are_convex_weights_and_the_corner_is_kept():
    matrix = tf1_bilinear_matrix(28, 299)
    torch.testing.assert_close(matrix.sum(1), torch.ones(299, dtype=torch.float64))
    assert (matrix >= 0).all() and matrix[0, 0] == 1.0
