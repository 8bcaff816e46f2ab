"""Fréchet distance between Gaussian fits of two feature sets (FID when the features are Inception's).

tr((S1 S2)^1/2) equals the sum of square roots of the eigenvalues of the symmetric PSD matrix
S2^1/2 S1 S2^1/2, so a symmetric eigensolver gives it exactly, with no sqrtm and no complex
numbers. The reference side's square root is computed once and cached with its statistics.
"""

from __future__ import annotations

import numpy as np  # numpy's LAPACK eigensolvers: scipy.linalg would add 0.2 s to every start-up


def gaussian_fit(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance in float64 (as pytorch-fid: np.cov, rowvar=False)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need a 2-D array of at least 2 feature rows, got shape {features.shape}")
    mean = features.mean(axis=0)
    centred = features - mean
    covariance = centred.T @ centred / (len(features) - 1)
    return mean, covariance


def psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix; tiny negative eigenvalues are clipped to 0."""
    eigenvalues, eigenvectors = np.linalg.eigh(np.asarray(matrix, dtype=np.float64))
    roots = np.sqrt(np.clip(eigenvalues, 0.0, None))
    return (eigenvectors * roots) @ eigenvectors.T


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    sqrt_sigma2: np.ndarray | None = None,
) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^1/2), in float64, clamped at 0.

    Pass `sqrt_sigma2` (from `psd_sqrt(sigma2)`) to skip one eigendecomposition.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1),) * 2:
        raise ValueError(
            f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}"
        )
    root2 = psd_sqrt(sigma2) if sqrt_sigma2 is None else np.asarray(sqrt_sigma2, np.float64)
    product = root2 @ sigma1 @ root2
    product = (product + product.T) / 2  # remove rounding asymmetry before the symmetric solver
    eigenvalues = np.linalg.eigvalsh(product)
    trace_sqrt = float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)
    return max(value, 0.0)
