"""Geometric alignment of a background frame onto a foreground frame, and the score used to verify a match.

The homography is estimated from ORB keypoints matched with Lowe's ratio test and fitted with RANSAC. Handheld
footage has frames where that fails (blur, low texture, the object covering the view): when too few inliers
support the fit, or the fit is degenerate, the alignment falls back to ECC (``cv2.findTransformECC``, a direct
intensity-based fit) started from a prior homography, and finally to the prior itself. Every alignment records
which method produced it and how many inliers it had, as a per-frame confidence.

A homography explains only one plane. The *verification score* of a candidate pair is therefore the exposure-
normalised photometric residual after warping: frames taken from the same viewpoint also agree off the dominant
plane (no parallax), so the residual prefers the right frame, not merely an alignable one.
"""

from dataclasses import dataclass

import numpy as np

from hf_eff.video._opencv import require_cv2


ALIGNMENT_METHODS = ("features", "chained", "ecc", "prior")


@dataclass
class FrameFeatures:
    """ORB keypoint positions ``(k, 2)`` float32 and binary descriptors ``(k, 32)`` uint8 of one frame."""

    points: np.ndarray
    descriptors: np.ndarray | None


@dataclass
class Alignment:
    """A background-to-foreground homography (working-resolution pixels) and how it was obtained."""

    homography: np.ndarray
    method: str  # one of ALIGNMENT_METHODS
    inliers: int = 0
    matches: int = 0


class FeatureExtractor:
    """ORB keypoints of grayscale frames (one detector, reused). ``levels`` pyramid levels 1.2x apart: 4 cover scale
    changes up to 1.7x between the passes at 30% less time than ORB's default 8 (same mask F1 on synthetic pairs)."""

    def __init__(self, num_features: int = 1000, levels: int = 4):
        if num_features < 10:
            raise ValueError(f"num_features must be >= 10, got {num_features}")
        if not isinstance(levels, int) or levels < 1:
            raise ValueError(f"feature_levels must be an int >= 1, got {levels!r}")
        cv2 = require_cv2()
        self._orb = cv2.ORB_create(
            nfeatures=num_features, fastThreshold=10, edgeThreshold=15, patchSize=15, nlevels=levels
        )

    def __call__(self, gray: np.ndarray) -> FrameFeatures:
        keypoints, descriptors = self._orb.detectAndCompute(gray, None)
        points = np.array([k.pt for k in keypoints], dtype=np.float32).reshape(-1, 2)
        return FrameFeatures(points, descriptors)


def _is_plausible(homography: np.ndarray | None, width: int, height: int) -> bool:
    """Reject numerically degenerate or folding homographies (an image does not flip or shrink 4x between frames)."""
    if homography is None or not np.isfinite(homography).all() or abs(homography[2, 2]) < 1e-8:
        return False
    h = homography / homography[2, 2]
    det = np.linalg.det(h[:2, :2])
    if not 0.25 < det < 4.0:
        return False
    corners = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], dtype=np.float64).T
    mapped = h @ corners
    if (mapped[2] <= 1e-3).any():
        return False
    quad = (mapped[:2] / mapped[2]).T
    edges = np.roll(quad, -1, axis=0) - quad
    cross = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    return bool((cross > 0).all() or (cross < 0).all())  # still a convex quadrilateral


class Aligner:
    """Estimates background-to-foreground homographies with a feature fit, an ECC fallback and a prior.

    Args:
        ratio_test: Lowe's ratio for accepting a descriptor match.
        ransac_threshold: RANSAC reprojection threshold in working-resolution pixels.
        min_inliers: fewer RANSAC inliers than this means the feature fit is not trusted.
        fallback: what :meth:`from_intensity` does when the feature fit fails: ``"ecc"`` (intensity-based
            refinement from a prior homography) or ``"prior"`` (use the prior directly).
        ecc_size: the longer side, in pixels, at which ECC runs (it is slow at full working resolution).
    """

    def __init__(
        self,
        ratio_test: float = 0.8,
        ransac_threshold: float = 3.0,
        min_inliers: int = 15,
        fallback: str = "ecc",
        ecc_size: int = 160,
    ):
        if not 0 < ratio_test <= 1:
            raise ValueError(f"ratio_test must be in (0, 1], got {ratio_test}")
        if ransac_threshold <= 0:
            raise ValueError(f"ransac_threshold must be > 0, got {ransac_threshold}")
        if min_inliers < 4:
            raise ValueError(f"min_inliers must be >= 4 (a homography needs 4 points), got {min_inliers}")
        if fallback not in ("ecc", "prior"):
            raise ValueError(f"fallback must be 'ecc' or 'prior', got {fallback!r}")
        cv2 = require_cv2()
        self.ratio_test = ratio_test
        self.ransac_threshold = ransac_threshold
        self.min_inliers = min_inliers
        self.fallback = fallback
        self.ecc_size = ecc_size
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)

    def from_features(
        self, foreground: FrameFeatures, background: FrameFeatures, size: tuple[int, int]
    ) -> Alignment | None:
        """The RANSAC homography from keypoint matches, or ``None`` if it is not supported by enough inliers."""
        cv2 = require_cv2()
        if foreground.descriptors is None or background.descriptors is None:
            return None
        if len(foreground.points) < self.min_inliers or len(background.points) < self.min_inliers:
            return None
        pairs = self._matcher.knnMatch(background.descriptors, foreground.descriptors, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < self.ratio_test * p[1].distance]
        if len(good) < self.min_inliers:
            return None
        source = background.points[[g.queryIdx for g in good]]
        target = foreground.points[[g.trainIdx for g in good]]
        homography, inlier_mask = cv2.findHomography(source, target, cv2.RANSAC, self.ransac_threshold)
        inliers = int(inlier_mask.sum()) if inlier_mask is not None else 0
        if inliers < self.min_inliers or not _is_plausible(homography, *size):
            return None
        return Alignment(homography / homography[2, 2], "features", inliers, len(good))

    def from_intensity(self, foreground_gray: np.ndarray, background_gray: np.ndarray, prior: np.ndarray) -> Alignment:
        """ECC refinement of ``prior`` on downscaled grayscale frames; the prior itself if ECC does not converge."""
        cv2 = require_cv2()
        height, width = foreground_gray.shape
        if self.fallback == "ecc":
            scale = min(1.0, self.ecc_size / max(height, width))
            size = (max(8, round(width * scale)), max(8, round(height * scale)))
            to_small = np.diag([size[0] / width, size[1] / height, 1.0])
            template = cv2.resize(foreground_gray, size, interpolation=cv2.INTER_AREA).astype(np.float32)
            moving = cv2.resize(background_gray, size, interpolation=cv2.INTER_AREA).astype(np.float32)
            # ECC's warp maps template (foreground) coordinates to input (background) coordinates
            warp = np.linalg.inv(to_small @ prior @ np.linalg.inv(to_small)).astype(np.float32)
            criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)
            try:
                _, warp = cv2.findTransformECC(template, moving, warp, cv2.MOTION_HOMOGRAPHY, criteria, None, 5)
                homography = np.linalg.inv(to_small) @ np.linalg.inv(warp.astype(np.float64)) @ to_small
                if _is_plausible(homography, width, height):
                    return Alignment(homography / homography[2, 2], "ecc")
            except cv2.error:
                pass
        return Alignment(np.asarray(prior, dtype=np.float64), "prior")


def valid_region(homography: np.ndarray, size: tuple[int, int], border: int = 0) -> np.ndarray:
    """Boolean mask of the foreground-frame pixels that the warped background frame covers, eroded by ``border``
    pixels (outside the warped frame there is nothing to compare with). The covered region is the image of the
    background frame's rectangle, drawn as a polygon (cheaper than warping an image of ones)."""
    cv2 = require_cv2()
    width, height = size
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [width - 1, height - 1, 1], [0, height - 1, 1]], float).T
    mapped = homography @ corners
    covered = np.zeros((height, width), np.uint8)
    if (mapped[2] > 1e-6).all():
        quad = (mapped[:2] / mapped[2]).T
        if np.isfinite(quad).all() and np.abs(quad).max() < 1e6:
            cv2.fillPoly(covered, [np.round(quad * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    if border > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * border + 1, 2 * border + 1))
        covered = cv2.erode(covered, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return covered > 0


def verification_image(gray: np.ndarray, scale: float, blur_sigma: float = 3.0) -> np.ndarray:
    """The image a frame is verified with: ``gray`` resized by ``scale`` and blurred (float32).

    Computed once per frame (background frames when they are indexed), not once per candidate pair. Blurring makes
    the score measure viewpoint (parallax) rather than sub-pixel registration error on fine texture (it made
    matches within one frame of the true viewpoint 0.73 -> 0.97 of frames on a 320x240 synthetic pair), and a
    blurred image loses nothing when it is verified at a reduced ``scale``; ``blur_sigma`` is in full-size pixels.
    """
    cv2 = require_cv2()
    height, width = gray.shape
    small = gray
    if scale != 1:
        size = (max(8, round(width * scale)), max(8, round(height * scale)))
        small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    small = small.astype(np.float32)
    if blur_sigma > 0:
        small = cv2.GaussianBlur(small, (0, 0), blur_sigma * scale)
    return small


def alignment_residual(
    foreground: np.ndarray, background: np.ndarray, homography: np.ndarray, truncation: float = 40.0
) -> float:
    """Verification cost of a candidate pair: mean truncated absolute difference (0..1) between the foreground frame
    and the warped background frame after matching their mean and contrast, over the covered pixels; frames that
    overlap on less than 60% of the view are penalised. Truncation keeps the foreground object from dominating.

    ``foreground`` and ``background`` are :func:`verification_image` outputs of one size; ``homography`` maps the
    background onto the foreground in their pixels.
    """
    cv2 = require_cv2()
    height, width = foreground.shape
    warped = cv2.warpPerspective(background, homography, (width, height), flags=cv2.INTER_LINEAR)
    valid = valid_region(homography, (width, height), border=2)
    coverage = float(valid.mean())
    if coverage < 0.05:
        return float("inf")
    f = foreground[valid]
    b = warped[valid]
    b = (b - b.mean()) * (f.std() / max(float(b.std()), 1e-3)) + f.mean()
    residual = float(np.minimum(np.abs(f - b), truncation).mean() / truncation)
    return residual + max(0.0, 0.6 - coverage)


def rescaled(homography: np.ndarray, scale: float) -> np.ndarray:
    """The same homography in pixels of images resized by ``scale``."""
    to_small = np.diag([scale, scale, 1.0])
    return to_small @ homography @ np.diag([1 / scale, 1 / scale, 1.0])
