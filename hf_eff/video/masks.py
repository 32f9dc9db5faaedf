"""Exposure-robust differencing of a frame against its aligned background, and mask clean-up.

1. Both images are blurred (suppresses sensor noise and sub-pixel misalignment) and converted to CIE Lab.
2. **Exposure compensation**: handheld cameras change gain and offset between passes (auto-exposure), so each Lab
   channel of the background is mapped onto the frame by a robust linear fit ``a * background + b``: least squares,
   refitted on the pixels whose residual is within 2.5 robust standard deviations (the object and parallax are
   outliers and do not bias the fit).
3. The difference is the largest channel-wise absolute residual (luminance only for grayscale input), minimised
   over background shifts of up to ``shift_tolerance`` pixels (tolerates small misalignment).
4. **Threshold**: a fixed level, or ``"auto"``: ``median + k * 1.4826 * MAD`` of the difference over the covered
   pixels, but at least ``min_threshold`` (the median and MAD describe the background, which covers most pixels).
5. **Clean-up**: only pixels the warped background covers; morphological opening (specks), closing (gaps);
   connected components smaller than ``min_area`` of the frame dropped; holes inside objects filled.
"""

from dataclasses import dataclass

import numpy as np

from hf_eff.video._opencv import require_cv2


@dataclass(frozen=True)
class MaskSettings:
    """How differences become a mask (sizes in working-resolution pixels).

    Attributes:
        threshold: a level in 0..255 Lab units, or ``"auto"`` (see the module docstring).
        min_threshold: lower bound of the automatic threshold.
        threshold_sigmas: ``k`` of the automatic threshold.
        blur_sigma: Gaussian blur before differencing.
        open_size, close_size: diameters of the elliptical opening / closing kernels (0 disables).
        min_area: components smaller than this fraction of the frame are removed.
        fill_holes: fill holes enclosed by a foreground component.
        chroma_weight: weight of the Lab a/b channels relative to lightness (chroma is less affected by shading).
        shift_tolerance: a pixel is compared with the background within this many pixels around it and the
            smallest difference counts, which absorbs small misalignment (parallax, interpolation).
    """

    threshold: float | str = "auto"
    min_threshold: float = 15.0
    threshold_sigmas: float = 6.0
    blur_sigma: float = 1.5
    open_size: int = 3
    close_size: int = 9
    min_area: float = 0.002
    fill_holes: bool = True
    chroma_weight: float = 1.5
    shift_tolerance: int = 1

    def __post_init__(self):
        if isinstance(self.threshold, str):
            if self.threshold != "auto":
                raise ValueError(f"threshold must be a number or 'auto', got {self.threshold!r}")
        elif not 0 < float(self.threshold) < 255:
            raise ValueError(f"threshold must be in (0, 255), got {self.threshold}")
        for name in ("min_threshold", "threshold_sigmas", "blur_sigma", "chroma_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("open_size", "close_size", "shift_tolerance"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.min_area < 1:
            raise ValueError(f"min_area must be a fraction in [0, 1), got {self.min_area}")


def match_exposure(
    source: np.ndarray, target: np.ndarray, valid: np.ndarray, iterations: int = 2, max_samples: int = 20000
) -> np.ndarray:
    """Per-channel robust linear fit ``a * source + b ~= target`` over ``valid`` pixels; returns the mapped
    ``source`` (float32, same shape). ``source`` and ``target`` are ``(H, W, C)`` float arrays. The fit uses an
    evenly spaced subset of at most ``max_samples`` pixels (two numbers per channel need no more)."""
    index = np.flatnonzero(valid.ravel())
    index = index[:: max(1, len(index) // max_samples)]
    xs = source.reshape(-1, source.shape[2])[index].astype(np.float64)
    ys = target.reshape(-1, target.shape[2])[index].astype(np.float64)
    mapped = np.empty_like(source, dtype=np.float32)
    for c in range(source.shape[2]):
        x, y = xs[:, c], ys[:, c]
        use = np.ones(len(x), bool)
        gain, offset = 1.0, 0.0
        for _ in range(iterations):
            if use.sum() < 16 or x[use].var() < 1e-9:
                break
            mx, my = x[use].mean(), y[use].mean()
            gain = float(((x[use] - mx) * (y[use] - my)).mean() / (x[use] - mx).var())
            offset = my - gain * mx
            residual = y - (gain * x + offset)
            sigma = 1.4826 * np.median(np.abs(residual - np.median(residual))) + 1e-6
            use = np.abs(residual) < 2.5 * sigma
        mapped[..., c] = gain * source[..., c] + offset
    return mapped


def difference_image(
    frame: np.ndarray,
    warped_background: np.ndarray,
    valid: np.ndarray,
    settings: MaskSettings,
    grayscale: bool = False,
) -> np.ndarray:
    """Exposure-compensated Lab difference (float32, 0 outside ``valid``) of two RGB uint8 images."""
    cv2 = require_cv2()

    def lab(image: np.ndarray) -> np.ndarray:
        if settings.blur_sigma > 0:
            image = cv2.GaussianBlur(image, (0, 0), settings.blur_sigma)
        return cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)

    f, b = lab(frame), lab(warped_background)
    if grayscale:
        f, b = f[..., :1], b[..., :1]
    if valid.sum() < 16:
        return np.zeros(frame.shape[:2], np.float32)
    b = match_exposure(b, f, valid)
    # smallest difference over background shifts of up to `shift_tolerance` pixels: residual misalignment
    # (parallax off the dominant plane, interpolation) must not become foreground
    r = settings.shift_tolerance
    height, width = f.shape[:2]
    frame_channels = [np.ascontiguousarray(f[..., c]) for c in range(f.shape[2])]
    padded = [
        cv2.copyMakeBorder(np.ascontiguousarray(b[..., c]), r, r, r, r, cv2.BORDER_REPLICATE)
        for c in range(b.shape[2])
    ]
    difference = None
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            d = None
            for c, (fc, bc) in enumerate(zip(frame_channels, padded)):
                dc = cv2.absdiff(fc, bc[dy : dy + height, dx : dx + width])
                if c > 0 and settings.chroma_weight != 1:
                    dc *= settings.chroma_weight
                d = dc if d is None else cv2.max(d, dc)
            difference = d if difference is None else cv2.min(difference, d)
    difference[~valid] = 0
    return difference


def threshold_level(difference: np.ndarray, valid: np.ndarray, settings: MaskSettings) -> float:
    if settings.threshold != "auto":
        return float(settings.threshold)
    values = difference[valid]
    if values.size == 0:
        return float(settings.min_threshold)
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    return max(settings.min_threshold, median + settings.threshold_sigmas * 1.4826 * mad)


def clean_mask(mask: np.ndarray, settings: MaskSettings) -> np.ndarray:
    """Opening, closing, small-component removal and hole filling of a boolean mask."""
    cv2 = require_cv2()
    m = mask.astype(np.uint8)
    if settings.open_size > 1:
        m = cv2.morphologyEx(
            m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (settings.open_size,) * 2)
        )
    if settings.close_size > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (settings.close_size,) * 2)
        m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, kernel)
    if settings.min_area > 0:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        keep = stats[:, cv2.CC_STAT_AREA] >= settings.min_area * m.size
        keep[0] = False
        m = keep[labels].astype(np.uint8)
    if settings.fill_holes and m.any():
        # background = what a flood fill from outside the frame reaches; everything else is object or hole
        padded = np.pad(m, 1)
        flood = padded.copy()
        cv2.floodFill(flood, np.zeros((flood.shape[0] + 2, flood.shape[1] + 2), np.uint8), (0, 0), 1)
        m = m | (flood[1:-1, 1:-1] == 0)
    return m.astype(bool)


def foreground_mask(
    frame: np.ndarray,
    references: list[tuple[np.ndarray, np.ndarray]],
    settings: MaskSettings,
    grayscale: bool = False,
) -> tuple[np.ndarray, float]:
    """The cleaned foreground mask of ``frame`` and the threshold used.

    ``references`` are ``(warped_background, valid)`` pairs: the matched background frame aligned to ``frame`` and
    optionally its temporal neighbours. A pixel's difference is its smallest over the references that cover it, so
    residue that only one reference shows (its parallax, its noise) does not become foreground.
    """
    if not references:
        raise ValueError("foreground_mask needs at least one aligned background frame")
    difference = np.full(frame.shape[:2], np.inf, np.float32)
    covered = np.zeros(frame.shape[:2], bool)
    for warped, valid in references:
        d = difference_image(frame, warped, valid, settings, grayscale)
        difference = np.minimum(difference, np.where(valid, d, np.inf))
        covered |= valid
    difference[~covered] = 0
    level = threshold_level(difference, covered, settings)
    return clean_mask((difference > level) & covered, settings), level
