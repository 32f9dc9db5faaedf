"""Local refinement after the global homography: dense optical flow for scene points off the dominant plane.

A homography aligns one plane. Points at other depths (a table in front of a wall) stay misaligned by their
parallax, and the misalignment becomes false foreground along every textured edge. After the warp, the remaining
motion between the frame and the warped background is small and smooth, so a fast dense optical flow
(OpenCV's DIS, Kroeger et al. 2016) measures it, and the warped background is resampled along the flow.

Two guards keep the flow from explaining the object away: the flow is computed on blurred images and capped at
``max_flow`` pixels (parallax left after matching the nearest viewpoint is a few pixels; an object is far larger),
and vectors longer than the cap are dropped rather than shortened, so the object's pixels, which have no true
correspondence, are compared with the background where the homography put it. [D: the paper's alignment is not
known, U; the spec lists dense flow as one option.]
"""

import numpy as np

from hf_eff.video._opencv import require_cv2


REFINEMENTS = ("none", "flow")


class FlowRefiner:
    """Resamples a warped background image so that it follows the frame's local motion.

    Args:
        max_flow: largest correction in pixels; longer flow vectors are set to zero.
        scale: the flow is computed at this fraction of the image size (it is smooth; half size is 4x cheaper).
    """

    def __init__(self, max_flow: float = 6.0, scale: float = 0.5):
        if max_flow <= 0:
            raise ValueError(f"max_flow must be > 0, got {max_flow}")
        if not 0 < scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        require_cv2()  # fail at construction, not at the first frame, without OpenCV
        self.max_flow = max_flow
        self.scale = scale
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    def flow(
        self, frame_gray: np.ndarray, warped_gray: np.ndarray, valid: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Displacement ``(dx, dy)`` (float32 planes) such that ``frame(x) ~ warped(x + flow(x))``; zero outside
        ``valid`` and where it is longer than ``max_flow``."""
        cv2 = require_cv2()
        height, width = frame_gray.shape
        size = (max(8, round(width * self.scale)), max(8, round(height * self.scale)))
        small_valid = cv2.resize(valid.view(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        a = _normalised(cv2.resize(frame_gray, size, interpolation=cv2.INTER_AREA), small_valid)
        b = _normalised(cv2.resize(warped_gray, size, interpolation=cv2.INTER_AREA), small_valid)
        # a new DIS object per call (0.02 ms): a reused one gives a slightly different first result on small images,
        # which would make the same frame's mask depend on what was processed before
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        flow = cv2.resize(dis.calc(a, b, None), (width, height), interpolation=cv2.INTER_LINEAR)
        dx, dy = cv2.split(flow)
        dx, dy = dx * (1 / self.scale), dy * (1 / self.scale)
        keep = cv2.compare(cv2.magnitude(dx, dy), self.max_flow, cv2.CMP_LE) & valid.view(np.uint8) * 255
        keep = keep.astype(np.float32) * (1 / 255)
        return cv2.multiply(dx, keep), cv2.multiply(dy, keep)

    def __call__(self, frame_gray: np.ndarray, warped: np.ndarray, warped_gray: np.ndarray, valid: np.ndarray):
        """``warped`` (any number of channels) resampled along the flow from ``frame_gray`` to ``warped_gray``."""
        cv2 = require_cv2()
        dx, dy = self.flow(frame_gray, warped_gray, valid)
        height, width = frame_gray.shape
        if self._grid is None or self._grid[0].shape != (height, width):
            self._grid = tuple(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)))
        map_x, map_y = cv2.add(self._grid[0], dx), cv2.add(self._grid[1], dy)
        return cv2.remap(warped, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _normalised(gray: np.ndarray, valid: np.ndarray) -> np.ndarray:  # valid: uint8 0/1
    """uint8 image with the valid pixels' mean and contrast fixed (DIS assumes constant brightness; handheld passes
    differ in exposure)."""
    cv2 = require_cv2()
    if cv2.countNonZero(valid) < 16:
        return gray
    mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(gray, mask=valid))
    gain = 40.0 / max(std, 1e-3)
    return cv2.addWeighted(gray, gain, gray, 0.0, 128.0 - gain * mean)  # saturates to 0..255
