"""Whole-volume inference by overlapping sliding windows with Gaussian blending.

A U-Net with ``L`` levels takes sides that are multiples of ``2 ** (L - 1)``, and its training crop is usually
smaller than a scan (BraTS: 240 x 240 x 155). :func:`sliding_window_inference` therefore

1. pads the volume (zeros by default, the background of skull-stripped, normalised MRI) where a side is shorter
   than the window, after rounding the window down to the smallest multiple that covers that side;
2. runs overlapping windows (start positions every ``window * (1 - overlap)`` voxels, the last one flush with the
   border) in mini-batches;
3. blends the window logits with a Gaussian importance map (centre voxels are more reliable than borders; the map
   is floored so that border voxels still count) or uniformly, and crops the padding off.

The scan positions follow MONAI's ``sliding_window_inference``, so with ``mode="constant"`` both give the same
result (checked in the tests when MONAI is installed); MONAI is not needed here.
"""

import math
from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F


def _window_starts(size: int, window: int, step: int) -> list[int]:
    if size <= window:
        return [0]
    count = math.ceil((size - window) / step) + 1
    return sorted({min(i * step, size - window) for i in range(count)})


def gaussian_importance_map(
    window: Sequence[int], sigma_scale: float = 0.125, device=None, dtype=torch.float32
) -> torch.Tensor:
    """Separable Gaussian centred on the window, ``sigma = sigma_scale * side``, max 1, floored at 1e-3 of it."""
    axes = []
    for side in window:
        coords = torch.arange(side, device=device, dtype=torch.float64) - (side - 1) / 2
        sigma = max(sigma_scale * side, 1e-6)
        axes.append(torch.exp(-0.5 * (coords / sigma) ** 2))
    weight = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    weight = weight / weight.max()
    return weight.clamp_min(1e-3).to(dtype)


def _check_windowing(roi_size, multiple, overlap, mode, batch_size):
    if len(roi_size) != 3 or any(int(s) != s or s < 1 or s % multiple for s in roi_size):
        raise ValueError(f"roi_size must be 3 positive multiples of {multiple}, got {list(roi_size)}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if mode not in ("gaussian", "constant"):
        raise ValueError(f"mode must be 'gaussian' or 'constant', got {mode!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


@torch.no_grad()
def sliding_window_inference(
    predictor: Callable[[torch.Tensor], torch.Tensor],
    volume: torch.Tensor,
    roi_size: Sequence[int],
    multiple: int = 1,
    overlap: float = 0.5,
    mode: str = "gaussian",
    sigma_scale: float = 0.125,
    batch_size: int = 1,
    pad_value: float = 0.0,
) -> torch.Tensor:
    """Blend ``predictor`` over overlapping windows of ``volume`` ``(batch, channels, X, Y, Z)`` of any size.

    Args:
        predictor: maps ``(n, channels, *window)`` to logits ``(n, outputs, *window)``.
        roi_size: the window (each side a multiple of ``multiple``); shrunk per side to the smallest multiple of
            ``multiple`` that covers a shorter volume, which is then padded with ``pad_value``.
        multiple: the network's size multiple (``2 ** (levels - 1)``).
        overlap: fraction of a window shared with its neighbour along each axis.
        mode: ``"gaussian"`` importance weighting or ``"constant"`` (plain average).

    Returns the blended logits ``(batch, outputs, X, Y, Z)`` in float32.
    """
    if not isinstance(volume, torch.Tensor) or volume.ndim != 5 or not volume.is_floating_point():
        raise ValueError(
            "volume must be a float tensor (batch, channels, X, Y, Z), got "
            f"{tuple(volume.shape) if isinstance(volume, torch.Tensor) else type(volume).__name__}"
        )
    _check_windowing(roi_size, multiple, overlap, mode, batch_size)
    size = volume.shape[2:]
    window = [min(int(r), math.ceil(s / multiple) * multiple) for r, s in zip(roi_size, size)]
    padded_size = [max(s, w) for s, w in zip(size, window)]
    pad = []
    for s, p in reversed(list(zip(size, padded_size))):
        pad += [(p - s) // 2, p - s - (p - s) // 2]  # centre the volume in the padding
    if any(pad):
        volume = F.pad(volume, pad, value=pad_value)
    steps = [max(1, int(w * (1 - overlap))) for w in window]
    starts = [_window_starts(p, w, st) for p, w, st in zip(padded_size, window, steps)]
    corners = [(a, b, c) for a in starts[0] for b in starts[1] for c in starts[2]]
    if mode == "gaussian":
        weight = gaussian_importance_map(window, sigma_scale, device=volume.device)
    else:
        weight = torch.ones(window, device=volume.device)

    output = None
    norm = torch.zeros(padded_size, device=volume.device)
    for sample in range(volume.shape[0]):
        for first in range(0, len(corners), batch_size):
            chunk = corners[first : first + batch_size]
            patches = torch.stack(
                [volume[sample, :, a : a + window[0], b : b + window[1], c : c + window[2]] for a, b, c in chunk]
            )
            logits = predictor(patches).float()
            if output is None:
                output = torch.zeros((volume.shape[0], logits.shape[1], *padded_size), device=volume.device)
            for (a, b, c), patch_logits in zip(chunk, logits):
                region = (slice(a, a + window[0]), slice(b, b + window[1]), slice(c, c + window[2]))
                output[(sample, slice(None), *region)] += patch_logits * weight
                if sample == 0:
                    norm[region] += weight
    output /= norm
    crop = [slice(pad[2 * (2 - d)], pad[2 * (2 - d)] + size[d]) for d in range(3)]
    return output[(slice(None), slice(None), *crop)]


__all__ = ["gaussian_importance_map", "sliding_window_inference"]
