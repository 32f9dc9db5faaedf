"""What the method keeps of a frame, computed once per frame: descriptors, keypoints and pre-filtered images.

Profiling the first version (cProfile, 640x480 input) showed that most of the time went into work repeated for
every candidate pair: blurring the same frames again for each verification, converting the same background frame
to Lab for each foreground frame that used it, and fitting a homography to every candidate. Here every frame is
turned into a :class:`FrameRecord` once, and the background video into a :class:`BackgroundIndex` once (its
*one-time indexing*); afterwards a foreground frame costs one keypoint extraction, a few feature fits and a few
warps of cached images.

The index also stores the homography between consecutive background frames. A candidate ``j`` near an aligned
background frame ``a`` then needs no feature fit of its own: ``H(j -> frame) = H(a -> frame) . H(j -> a)``, chained
through the stored steps (:meth:`BackgroundIndex.between`).
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from hf_eff.video._opencv import require_cv2
from hf_eff.video.alignment import Aligner, FeatureExtractor, FrameFeatures, verification_image
from hf_eff.video.descriptors import tiny_image_descriptor
from hf_eff.video.io import VideoInfo
from hf_eff.video.masks import MaskSettings, blurred_lab


@dataclass
class FrameRecord:
    """One frame after indexing (working resolution).

    Attributes:
        descriptor: tiny-image descriptor (unit norm).
        features: ORB keypoints and descriptors.
        verification: the downscaled, blurred gray image candidate pairs are scored with.
        gray: the working-resolution gray image (for the ECC fallback).
        lab: the blurred Lab image frames are differenced in (``None`` where it is not kept).
    """

    descriptor: np.ndarray
    features: FrameFeatures
    verification: np.ndarray
    gray: np.ndarray
    lab: np.ndarray | None = None


def working_size_for(info: VideoInfo, longer_side: int) -> tuple[int, int]:
    """``(width, height)`` with the longer side ``longer_side`` and the video's aspect ratio."""
    scale = longer_side / max(info.width, info.height)
    return max(8, round(info.width * scale)), max(8, round(info.height * scale))


class FrameIndexer:
    """Turns full-resolution RGB frames into :class:`FrameRecord` at a fixed working size.

    Args:
        working: ``(width, height)`` frames are resized to (up, for small inputs, so ORB finds enough keypoints).
        num_features, feature_levels: ORB keypoints per frame and pyramid levels.
        descriptor_size: ``(width, height)`` of the tiny-image descriptor.
        verification_scale: size of the verification image relative to the working size.
        mask_settings: the blur of the Lab image.
    """

    def __init__(
        self,
        working: tuple[int, int],
        num_features: int,
        feature_levels: int,
        descriptor_size: tuple[int, int],
        verification_scale: float,
        mask_settings: MaskSettings,
    ):
        self.working = working
        self.descriptor_size = descriptor_size
        self.verification_scale = verification_scale
        self.mask_settings = mask_settings
        self._extract = FeatureExtractor(num_features, feature_levels)

    def resize(self, frame: np.ndarray) -> np.ndarray:
        """``frame`` at working resolution (area averaging when shrinking)."""
        cv2 = require_cv2()
        if frame.shape[1] == self.working[0] and frame.shape[0] == self.working[1]:
            return frame
        shrink = frame.shape[1] > self.working[0]
        return cv2.resize(frame, self.working, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)

    def __call__(self, small: np.ndarray, keep_lab: bool) -> FrameRecord:
        """The record of a frame already at working resolution (see :meth:`resize`)."""
        cv2 = require_cv2()
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        return FrameRecord(
            descriptor=tiny_image_descriptor(gray, self.descriptor_size),
            features=self._extract(gray),
            verification=verification_image(gray, self.verification_scale),
            gray=gray,
            lab=blurred_lab(small, self.mask_settings) if keep_lab else None,
        )


@dataclass
class BackgroundIndex:
    """The background video after its one-time indexing: one :class:`FrameRecord` (with its Lab image) per frame,
    the descriptors as one matrix, and the homography from each frame to the next.

    Memory grows with the background video (about 300 kB per frame at 320x240 working resolution), not with the
    foreground video: one index serves any number of foreground videos or a camera stream.
    """

    info: VideoInfo
    working: tuple[int, int]
    records: list[FrameRecord]
    descriptors: np.ndarray  # (m, d)
    steps: list[np.ndarray]  # steps[j] maps background frame j onto frame j + 1 (working pixels)
    grayscale: bool
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.records)

    @property
    def to_working(self) -> np.ndarray:
        """3x3 scaling from the background video's pixels to working pixels."""
        return np.diag([self.working[0] / self.info.width, self.working[1] / self.info.height, 1.0])

    def between(self, source: int, target: int) -> np.ndarray:
        """Homography mapping background frame ``source`` onto background frame ``target``, chained through the
        consecutive steps (exact for the dominant plane up to the error of each step's fit)."""
        h = np.eye(3)
        if source < target:
            for k in range(source, target):
                h = self.steps[k] @ h
        else:
            for k in range(target, source):
                h = h @ self.steps[k]
            h = np.linalg.inv(h)
        return h / h[2, 2]

    @classmethod
    def build(
        cls, frames: Iterable[np.ndarray], info: VideoInfo, indexer: FrameIndexer, aligner: Aligner
    ) -> "BackgroundIndex":
        """Index full-resolution RGB ``frames`` (a stream) with ``indexer``; fit the steps with ``aligner``."""
        records: list[FrameRecord] = []
        steps: list[np.ndarray] = []
        for frame in frames:
            record = indexer(indexer.resize(frame), keep_lab=True)
            if records:
                steps.append(_step(records[-1], record, indexer.working, aligner, steps))
            records.append(record)
        if not records:
            raise ValueError("background video: the video has no frames")
        return cls(
            info=info,
            working=indexer.working,
            records=records,
            descriptors=np.stack([r.descriptor for r in records]),
            steps=steps,
            grayscale=info.is_grayscale,
        )


def _step(
    previous: FrameRecord, current: FrameRecord, size: tuple[int, int], aligner: Aligner, steps: list[np.ndarray]
) -> np.ndarray:
    """Homography from the previous background frame onto the current one: a feature fit, else ECC started from the
    previous step (the camera moves smoothly), else that prior."""
    alignment = aligner.from_features(current.features, previous.features, size)
    if alignment is None:
        alignment = aligner.from_intensity(current.gray, previous.gray, steps[-1] if steps else np.eye(3))
    return alignment.homography
