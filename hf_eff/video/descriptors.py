"""Compact global frame descriptors: the cheap first look of the matcher.

A "tiny image" descriptor (grayscale, area-downsampled to about 32x24, blurred, zero-mean, unit-norm) summarises the
viewpoint of a frame in a few hundred numbers. Zero mean and unit norm make it invariant to exposure gain and bias, so
the cosine distance between two descriptors compares the *layout* of the scene, not its brightness. The paper's exact
descriptor is not known [U]; a tiny image is the simplest choice that works on handheld footage [D].
"""

import numpy as np

from hf_eff.video._opencv import require_cv2


def tiny_image_descriptor(frame: np.ndarray, size: tuple[int, int] = (32, 24), blur_sigma: float = 1.0) -> np.ndarray:
    """Descriptor of one RGB ``(H, W, 3)`` or gray ``(H, W)`` uint8 frame: a float32 vector of ``size[0] * size[1]``
    values with zero mean and unit norm (all zeros for a constant frame)."""
    cv2 = require_cv2()
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    small = cv2.resize(gray.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    if blur_sigma > 0:
        small = cv2.GaussianBlur(small, (0, 0), blur_sigma)
    vector = small.ravel() - small.mean()
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 1e-6 else np.zeros_like(vector)).astype(np.float32)


def descriptor_distance(foreground: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Cosine distances (in ``[0, 2]``) between rows of ``foreground (n, d)`` and ``background (k, d)``: ``(n, k)``."""
    return 1.0 - foreground @ background.T


def downsample_in_time(descriptors: np.ndarray) -> np.ndarray:
    """Average consecutive pairs of descriptors (the last one alone if the count is odd) and renormalise: the next
    coarser level of the coarse-to-fine matcher."""
    n = len(descriptors)
    pairs = descriptors[: n - n % 2].reshape(n // 2, 2, -1).mean(axis=1)
    if n % 2:
        pairs = np.concatenate([pairs, descriptors[-1:]], axis=0)
    norms = np.linalg.norm(pairs, axis=1, keepdims=True)
    return (pairs / np.maximum(norms, 1e-6)).astype(np.float32)
