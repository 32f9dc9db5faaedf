"""Background subtraction from two handheld videos: the whole method, end to end, without transformers.

The background video is **indexed once** (:meth:`BackgroundSubtractor.index`, :mod:`hf_eff.video.index`): every
frame's descriptor, keypoints, verification image, blurred Lab image and the homography to the next frame. One index
serves any number of foreground videos. A foreground video is then processed in one of two ways:

- **Two passes** (``matching="windowed"``, the default, or ``"brute-force"``): :meth:`~BackgroundSubtractor.plan`
  streams the foreground video once, keeping per frame only its small record, and matches the whole sequence with
  a monotone dynamic program (:mod:`hf_eff.video.matching`); :meth:`~BackgroundSubtractor.render` streams it again
  at full resolution and yields each frame's mask. Memory grows with the video by one record per frame.
- **Streaming** (``matching="online"``, :meth:`~BackgroundSubtractor.stream`): each frame is matched, aligned and
  masked as it arrives (a camera, a pipe, a file of any length), in constant memory; matching is greedy within the
  band temporal smoothness allows, with no look-ahead.

For each frame, the candidate background frames are verified by the residual after alignment
(:mod:`hf_eff.video.alignment`): one feature fit to the best descriptor match (the anchor), the others chained from
it through the index's frame-to-frame homographies. The chosen frame gets its own feature fit (ECC fallback), its
neighbours are chained from it, all are warped, optionally refined by dense flow for parallax
(:mod:`hf_eff.video.refinement`), differenced and cleaned up (:mod:`hf_eff.video.masks`) at working resolution.

Small inputs are resized *up* to the working resolution, so ORB finds enough keypoints on thumbnails too. The two
videos may differ in resolution but must have the same aspect ratio (within 2%): both are resized to the working size
of the background video. If either video is grayscale, differencing uses lightness only.

Reference: Hamid et al., "Fast Approximate Matching of Cell-Phone Videos for Robust Background Subtraction",
arXiv 1404.5351. Parts the paper leaves open are hf_eff's reconstructions, marked as such where they are defined.
"""

import contextlib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from hf_eff.video._opencv import require_cv2
from hf_eff.video.alignment import Aligner, Alignment, FeatureExtractor, alignment_residual, rescaled, valid_region
from hf_eff.video.index import BackgroundIndex, FrameIndexer, FrameRecord, working_size_for
from hf_eff.video.io import VideoInfo, VideoInput, VideoReader, VideoWriter
from hf_eff.video.masks import MaskSettings, blurred_lab, foreground_mask
from hf_eff.video.matching import STRATEGIES, FrameMatches, OnlineMatcher, default_max_step, match_frames
from hf_eff.video.refinement import REFINEMENTS, FlowRefiner


@dataclass(frozen=True)
class SubtractorSettings(MaskSettings):
    """Every hyper-parameter of the method (sizes in working-resolution pixels): the mask fields it inherits from
    :class:`hf_eff.video.masks.MaskSettings`, then matching and alignment.

    Matching:
        working_size: longer side of the frames used for matching and differencing. 256 rather than 320: mask F1
            moved by -0.009 / -0.003 on two standard synthetic pairs and improved on parallax (+0.01 / +0.03) and
            semi-real pairs (+0.006 / +0.015; a coarser grid hides small misalignment and compression noise),
            at 0.64x the per-pixel cost.
        descriptor_size: ``(width, height)`` of the tiny-image descriptor.
        matching: ``"windowed"`` (temporal smoothness over the whole video, linear cost, two passes),
            ``"online"`` (each frame decided as it arrives: streaming, constant memory) or ``"brute-force"`` (all
            pairs, quadratic; the reference).
        search_radius: band half-width of the coarse-to-fine descriptor alignment.
        verify_window: background frames geometrically verified on each side of the descriptor match.
        max_step, max_back: largest forward / backward move of the match between consecutive foreground frames
            (``None``: three times the average rate). Pauses (step 0) are always allowed; ``max_back = 1``
            tolerates small reversals of the camera but, on reversal-free synthetic pairs, let noisy
            verification scores step back to a wrong frame (within one frame of the truth for 96-100% of
            frames with 0, 93-97% with 1), hence the default 0.
    Alignment:
        num_features, feature_levels, ratio_test, ransac_threshold, min_inliers: ORB (keypoints per frame, pyramid
            levels) + RANSAC homography.
        alignment_fallback: ``"ecc"`` or ``"prior"`` when the feature fit has too few inliers.
        verification_size: longer side, in pixels, of the blurred images candidate pairs are scored with (the
            blur removes the detail a larger size would add).
        border: pixels along the warped frame's edge that are never foreground (interpolation artefacts).
        reference_frames: background frames on each side of the match that are also aligned and compared; each
            pixel keeps its smallest difference (suppresses parallax residue; 0 = the matched frame only).
        refinement: ``"flow"`` resamples each warped background frame along the dense optical flow (DIS) that is
            left after the homography, so scene points off the dominant plane align too (parallax); ``"none"``
            keeps the homography alone (see :mod:`hf_eff.video.refinement`).
        max_flow: largest flow correction in working pixels (longer vectors are dropped, not shortened).
    Masks: see :class:`hf_eff.video.masks.MaskSettings`.
    """

    working_size: int = 256
    descriptor_size: tuple[int, int] = (32, 24)
    matching: str = "windowed"
    search_radius: int = 3
    verify_window: int = 2
    max_step: int | None = None
    max_back: int = 0
    num_features: int = 500
    feature_levels: int = 4
    ratio_test: float = 0.8
    ransac_threshold: float = 3.0
    min_inliers: int = 15
    alignment_fallback: str = "ecc"
    verification_size: int = 160
    border: int = 4
    reference_frames: int = 1
    refinement: str = "flow"
    max_flow: float = 6.0

    def __post_init__(self):
        super().__post_init__()  # the mask fields
        if not isinstance(self.working_size, int) or self.working_size < 32:
            raise ValueError(f"working_size must be an int >= 32, got {self.working_size!r}")
        if len(self.descriptor_size) != 2 or min(self.descriptor_size) < 2:
            raise ValueError(f"descriptor_size must be (width, height) with both >= 2, got {self.descriptor_size!r}")
        object.__setattr__(self, "descriptor_size", tuple(int(v) for v in self.descriptor_size))
        if self.matching not in STRATEGIES:
            raise ValueError(f"matching must be one of {STRATEGIES}, got {self.matching!r}")
        for name in ("search_radius", "verify_window", "max_back", "border", "reference_frames"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be an int >= 0, got {getattr(self, name)!r}")
        if not isinstance(self.verification_size, int) or self.verification_size < 16:
            raise ValueError(f"verification_size must be an int >= 16, got {self.verification_size!r}")
        if self.refinement not in REFINEMENTS:
            raise ValueError(f"refinement must be one of {REFINEMENTS}, got {self.refinement!r}")
        if not self.max_flow > 0:
            raise ValueError(f"max_flow must be > 0, got {self.max_flow!r}")
        if self.max_step is not None and (not isinstance(self.max_step, int) or self.max_step < 1):
            raise ValueError(f"max_step must be None or an int >= 1, got {self.max_step!r}")
        Aligner(self.ratio_test, self.ransac_threshold, self.min_inliers, self.alignment_fallback)  # validates
        FeatureExtractor(self.num_features, self.feature_levels)

    def mask_settings(self) -> MaskSettings:
        return MaskSettings(**{f.name: getattr(self, f.name) for f in fields(MaskSettings)})

    def replace(self, **changes: Any) -> "SubtractorSettings":
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown setting(s) {sorted(unknown)}; valid: {sorted(self.__dataclass_fields__)}")
        return SubtractorSettings(**{**asdict(self), **changes})


@dataclass
class SubtractionPlan:
    """The outcome of pass 1 (two-pass matching): per foreground frame, the matched background frame, its alignment
    and the neighbours also used for differencing (working-resolution homographies onto the frame)."""

    index: BackgroundIndex
    foreground: VideoInfo
    matches: FrameMatches
    alignments: list[Alignment]
    neighbours: list[list[tuple[int, np.ndarray]]]
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class FrameResult:
    """One foreground frame's output (full resolution)."""

    index: int
    mask: np.ndarray  # (H, W) bool
    frame: np.ndarray  # (H, W, 3) uint8, the input frame
    match: int
    homography: np.ndarray  # 3x3, background frame -> this frame
    alignment: str
    inliers: int
    cost: float
    threshold: float

    @property
    def foreground(self) -> np.ndarray:
        """The frame with its background zeroed: exactly ``frame * mask``."""
        return self.frame * self.mask[..., None]

    @property
    def rgba(self) -> np.ndarray:
        """The frame with the mask as alpha (0 = background, 255 = object)."""
        return np.concatenate([self.frame, (self.mask * 255).astype(np.uint8)[..., None]], axis=2)


@dataclass
class SubtractionResult:
    """All outputs of :meth:`BackgroundSubtractor.__call__` (numpy; see :class:`FrameResult` per frame).

    ``foreground`` is the ``(n, H, W, 4)`` RGBA video (alpha = mask), or ``None`` with ``return_frames=False``.
    ``stats`` counts the work done (descriptor comparisons, verifications) and times each phase in seconds
    (``index``: the background video's one-time indexing).
    """

    masks: np.ndarray
    foreground: np.ndarray | None
    matches: np.ndarray
    homographies: np.ndarray
    alignment: list[str]
    inliers: np.ndarray
    costs: np.ndarray
    thresholds: np.ndarray
    stats: dict[str, Any]


class _FrameAligner:
    """Alignments of one foreground frame's record with background frames: a feature fit to the anchor, chained
    homographies for the frames around it, and per-pair feature fits where no anchor fit exists."""

    def __init__(self, record: FrameRecord, index: BackgroundIndex, aligner: Aligner, scale: float):
        self.record = record
        self.index = index
        self.aligner = aligner
        self.scale = scale
        self._fits: dict[int, Alignment | None] = {}
        self.anchor: int | None = None

    def fit(self, j: int) -> Alignment | None:
        """Feature fit of background frame ``j`` onto the frame (cached)."""
        if j not in self._fits:
            self._fits[j] = self.aligner.from_features(
                self.record.features, self.index.records[j].features, self.index.working
            )
        return self._fits[j]

    def homography(self, j: int, chained: bool = True) -> np.ndarray | None:
        """Background frame ``j`` onto the frame: chained from the anchor's fit when there is one, else its own."""
        if chained and self.anchor is not None and self.fit(self.anchor) is not None:
            return self.fit(self.anchor).homography @ self.index.between(j, self.anchor)
        alignment = self.fit(j)
        return None if alignment is None else alignment.homography

    def cost(self, j: int, chained: bool = True) -> float:
        """Verification cost of background frame ``j`` (``inf`` when it cannot be aligned)."""
        h = self.homography(j, chained)
        if h is None:
            return float("inf")
        return alignment_residual(
            self.record.verification, self.index.records[j].verification, rescaled(h, self.scale)
        )

    def final(self, j: int, prior: np.ndarray) -> Alignment:
        """The alignment used for the mask: the anchor's feature fit (chained to ``j`` when ``j`` is not the anchor:
        one feature fit per frame), else ``j``'s own fit, else ECC started from ``prior``."""
        if j == self.anchor or self.anchor is None or self.fit(self.anchor) is None:
            alignment = self.fit(j)
            if alignment is not None:
                return alignment
        h = self.homography(j)
        if h is not None:
            anchor_fit = self.fit(self.anchor)
            return Alignment(h, "chained", anchor_fit.inliers, anchor_fit.matches)
        return self.aligner.from_intensity(self.record.gray, self.index.records[j].gray, prior)


class BackgroundSubtractor:
    """Extract near-field foreground objects by matching a handheld video against a clean background pass.

    >>> subtractor = BackgroundSubtractor(verify_window=2)
    >>> result = subtractor(foreground_frames, background_frames)   # arrays, frame lists or file paths
    >>> index = subtractor.index("empty_scene.mp4")                  # index a background once ...
    >>> for frame in subtractor.stream(camera_frames, index):        # ... and stream any foreground against it
    ...     show(frame.mask)
    """

    #: the work counts of the latest run (its ``FrameMatches``, or the ``OnlineMatcher`` of a stream)
    last_work: FrameMatches | OnlineMatcher | None = None

    def __init__(self, settings: SubtractorSettings | None = None, **overrides: Any):
        settings = settings or SubtractorSettings()
        self.settings = settings.replace(**overrides) if overrides else settings
        s = self.settings
        self._aligner = Aligner(s.ratio_test, s.ransac_threshold, s.min_inliers, s.alignment_fallback)
        self._refiner = FlowRefiner(s.max_flow) if s.refinement == "flow" else None

    def _indexer(self, working: tuple[int, int]) -> FrameIndexer:
        s = self.settings
        scale = s.verification_size / max(working)
        return FrameIndexer(working, s.num_features, s.feature_levels, s.descriptor_size, scale, s.mask_settings())

    # the background, once -------------------------------------------------------------------------------------
    def index(self, background: VideoInput | BackgroundIndex, progress: bool = False) -> BackgroundIndex:
        """Index the background video once (a :class:`~hf_eff.video.index.BackgroundIndex` is returned as is)."""
        if isinstance(background, BackgroundIndex):
            return background
        start = time.perf_counter()
        reader = _reader(background, "background video")
        indexer = self._indexer(working_size_for(reader.info, self.settings.working_size))
        frames = _progress(reader, progress, "indexing background video", reader.info.num_frames)
        index = BackgroundIndex.build(frames, reader.info, indexer, self._aligner)
        index.seconds = time.perf_counter() - start
        return index

    # two passes ------------------------------------------------------------------------------------------------
    def plan(
        self, foreground: VideoInput, background: VideoInput | BackgroundIndex, progress: bool = False
    ) -> SubtractionPlan:
        """Pass 1: read the foreground video once and match the whole sequence (``windowed`` / ``brute-force``)."""
        s = self.settings
        if s.matching == "online":
            raise ValueError("matching='online' has no plan: use stream(), or matching='windowed'")
        index = self.index(background, progress)
        reader = _reader(foreground, "foreground video")
        _check_aspect(reader.info, index.info)
        indexer = self._indexer(index.working)
        start = time.perf_counter()
        frames = _progress(reader, progress, "reading foreground video", reader.info.num_frames)
        records = [indexer(indexer.resize(frame), keep_lab=False) for frame in frames]
        read_seconds = time.perf_counter() - start
        start = time.perf_counter()
        aligners = [_FrameAligner(r, index, self._aligner, indexer.verification_scale) for r in records]
        chained = s.matching == "windowed"
        bar = _progress(None, progress, "matching", len(records))
        matches = match_frames(
            np.stack([r.descriptor for r in records]),
            index.descriptors,
            lambda i, j: aligners[i].cost(j, chained),
            strategy=s.matching,
            radius=s.search_radius,
            window=s.verify_window,
            max_step=s.max_step,
            max_back=s.max_back,
            progress=bar.update if bar is not None else None,
            on_coarse_path=_set_anchors(aligners) if chained else None,
        )
        self.last_work = matches
        if bar is not None:
            bar.close()
        alignments: list[Alignment] = []
        neighbours = []
        for i, j in enumerate(matches.matches):
            prior = alignments[-1].homography if alignments else np.eye(3)
            alignments.append(aligners[i].final(int(j), prior))
            neighbours.append(self._neighbours(index, int(j), alignments[-1].homography))
        seconds = {"index": index.seconds, "read": read_seconds, "match": time.perf_counter() - start}
        return SubtractionPlan(index, reader.info, matches, alignments, neighbours, seconds)

    def render(self, plan: SubtractionPlan, foreground: VideoInput, progress: bool = False) -> Iterator[FrameResult]:
        """Pass 2: stream the foreground video at full resolution and yield each frame's mask and foreground."""
        reader = _reader(foreground, "foreground video")
        indexer = self._indexer(plan.index.working)
        n = len(plan.alignments)
        for i, frame in enumerate(_progress(reader, progress, "masks", n)):
            if i >= n:
                raise ValueError(f"foreground video: it now has more than the {n} frames it had in the first pass")
            small = indexer.resize(frame)
            j = int(plan.matches.matches[i])
            yield self._result(
                i, frame, small, plan.index, j, plan.alignments[i], plan.neighbours[i], float(plan.matches.costs[i])
            )

    # streaming -------------------------------------------------------------------------------------------------
    def stream(
        self,
        foreground: VideoInput,
        background: VideoInput | BackgroundIndex,
        progress: bool = False,
        threads: int = 1,
    ) -> Iterator[FrameResult]:
        """Match, align and mask each foreground frame as it arrives (``matching="online"``), in constant memory.

        ``foreground`` may be anything :class:`~hf_eff.video.VideoReader` accepts, or any iterable of frames (a
        generator reading a camera); ``background`` a video or a :class:`~hf_eff.video.index.BackgroundIndex`.
        ``threads=2`` computes the mask of frame ``i`` in a second thread while frame ``i + 1`` is matched (OpenCV
        releases the GIL, so both cores of a small CPU work; at most one frame waits, and results come in order).
        """
        if threads not in (1, 2):
            raise ValueError(f"threads must be 1 or 2, got {threads!r}")
        index = self.index(background, progress)
        frames, info = _frame_stream(foreground, index.info)
        steps = self._online_steps(
            _progress(frames, progress, "masks", info.num_frames if info else None), info, index
        )
        if threads == 1:
            for step in steps:
                yield self._result(*step)
            return
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="bgsub-masks") as pool:
            pending = deque()
            for step in steps:
                pending.append(pool.submit(self._result, *step))
                if len(pending) > 1:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def _online_steps(self, frames, info: VideoInfo | None, index: BackgroundIndex) -> Iterator[tuple]:
        """Online matching and alignment of each frame: the arguments of :meth:`_result`."""
        s = self.settings
        n = info.num_frames if info is not None and info.num_frames else len(index)
        max_step = s.max_step if s.max_step is not None else default_max_step(n, len(index))
        matcher = OnlineMatcher(index.descriptors, window=s.verify_window, max_step=max_step, max_back=s.max_back)
        self.last_work = matcher
        indexer = self._indexer(index.working)
        prior = np.eye(3)
        for i, frame in enumerate(frames):
            small = indexer.resize(frame)
            record = indexer(small, keep_lab=False)
            aligner = _FrameAligner(record, index, self._aligner, indexer.verification_scale)
            anchor, candidates = matcher.candidates(record.descriptor)
            aligner.anchor = anchor
            costs = [aligner.cost(j) for j in candidates]
            j = matcher.choose(candidates, costs, anchor)
            alignment = aligner.final(j, prior)
            prior = alignment.homography
            cost = costs[candidates.index(j)] if j in candidates else float("nan")
            yield i, frame, small, index, j, alignment, self._neighbours(index, j, prior), cost

    # one frame -------------------------------------------------------------------------------------------------
    def _neighbours(self, index: BackgroundIndex, j: int, homography: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Background frames next to the match, chained from its alignment (also compared when differencing)."""
        r = self.settings.reference_frames
        near = range(max(0, j - r), min(len(index), j + r + 1))
        return [(k, homography @ index.between(k, j)) for k in near if k != j]

    def _result(
        self,
        i: int,
        frame: np.ndarray,
        small: np.ndarray,
        index: BackgroundIndex,
        j: int,
        alignment: Alignment,
        neighbours: list[tuple[int, np.ndarray]],
        cost: float,
    ) -> FrameResult:
        cv2 = require_cv2()
        s = self.settings
        size = index.working
        frame_lab = blurred_lab(small, s.mask_settings())
        references = []
        for k, h in [(j, alignment.homography), *neighbours]:
            warped = cv2.warpPerspective(index.records[k].lab, h, size, flags=cv2.INTER_LINEAR)
            valid = valid_region(h, size, s.border)
            if self._refiner is not None:
                warped = self._refiner(frame_lab[..., 0], warped, warped[..., 0], valid)
            references.append((warped, valid))
        grayscale = index.grayscale or _is_gray(small)
        mask, level = foreground_mask(frame_lab, references, s.mask_settings(), grayscale)
        if mask.shape != frame.shape[:2]:
            resized = cv2.resize(mask.view(np.uint8), (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
            mask = resized > 0
        to_working = np.diag([size[0] / frame.shape[1], size[1] / frame.shape[0], 1.0])
        h = np.linalg.inv(to_working) @ alignment.homography @ index.to_working
        return FrameResult(
            index=i,
            mask=mask,
            frame=frame,
            match=j,
            homography=h / h[2, 2],
            alignment=alignment.method,
            inliers=alignment.inliers,
            cost=cost,
            threshold=level,
        )

    # everything ------------------------------------------------------------------------------------------------
    def frames(
        self,
        foreground: VideoInput,
        background: VideoInput | BackgroundIndex,
        progress: bool = False,
        threads: int = 1,
    ) -> Iterator[FrameResult]:
        """Each foreground frame's result, by the configured matching (two passes, or streaming for ``online``;
        ``threads`` applies to streaming, see :meth:`stream`)."""
        if self.settings.matching == "online":
            yield from self.stream(foreground, background, progress, threads)
            return
        reader = _reader(foreground, "foreground video")
        plan = self.plan(reader, background, progress)
        yield from self.render(plan, reader, progress)

    def __call__(
        self,
        foreground: VideoInput,
        background: VideoInput | BackgroundIndex,
        *,
        output_video: str | Path | None = None,
        mask_video: str | Path | None = None,
        return_frames: bool = True,
        fps: float | None = None,
        progress: bool = False,
        threads: int = 1,
    ) -> SubtractionResult:
        """Run the method. ``output_video`` / ``mask_video`` stream the foreground (background black) and the
        masks to files (``.mp4``, ``.mkv`` or ``.avi``); ``return_frames=False`` keeps only the masks in memory;
        ``threads=2`` overlaps the masks and the matching of consecutive frames when streaming (see :meth:`stream`)."""
        start = time.perf_counter()
        fg_reader = _reader(foreground, "foreground video")
        index = self.index(background, progress)
        index_seconds = index.seconds if not isinstance(background, BackgroundIndex) else 0.0
        fps = fps or fg_reader.info.fps or 30.0
        frames_start = time.perf_counter()
        masks, rgba, homographies, alignment, inliers, thresholds, matches, costs = [], [], [], [], [], [], [], []
        self.last_work = None
        with contextlib.ExitStack() as stack:
            frame_writer = stack.enter_context(VideoWriter(output_video, fps)) if output_video is not None else None
            mask_writer = stack.enter_context(VideoWriter(mask_video, fps)) if mask_video is not None else None
            for r in self.frames(fg_reader, index, progress, threads):
                masks.append(r.mask)
                if return_frames:
                    rgba.append(r.rgba)
                if frame_writer is not None:
                    frame_writer.write(r.foreground)
                if mask_writer is not None:
                    mask_writer.write(np.repeat((r.mask * 255).astype(np.uint8)[..., None], 3, axis=2))
                homographies.append(r.homography)
                alignment.append(r.alignment)
                inliers.append(r.inliers)
                thresholds.append(r.threshold)
                matches.append(r.match)
                costs.append(r.cost)
        end = time.perf_counter()
        work = self.last_work  # the FrameMatches of two-pass matching, or the OnlineMatcher
        seconds = {"index": index_seconds, "foreground": end - frames_start, "total": end - start}
        return SubtractionResult(
            masks=np.stack(masks),
            foreground=np.stack(rgba) if return_frames else None,
            matches=np.array(matches),
            homographies=np.stack(homographies),
            alignment=alignment,
            inliers=np.array(inliers),
            costs=np.array(costs),
            thresholds=np.array(thresholds),
            stats={
                "frames": len(masks),
                "background_frames": len(index),
                "descriptor_comparisons": work.descriptor_comparisons,
                "verifications": work.verifications,
                "seconds": seconds,
                "strategy": self.settings.matching,
            },
        )


def _reader(source: VideoInput, name: str) -> VideoReader:
    return source if isinstance(source, VideoReader) else VideoReader(source, name)


def _check_aspect(foreground: VideoInfo, background: VideoInfo) -> None:
    ratio_f = foreground.width / foreground.height
    ratio_b = background.width / background.height
    if abs(ratio_f / ratio_b - 1) > 0.02:
        raise ValueError(
            f"background video is {background.width}x{background.height} but foreground video is "
            f"{foreground.width}x{foreground.height}: their aspect ratios differ; film both in the same orientation"
        )


def _progress(iterable, enabled: bool, description: str, total: int | None):
    """A tqdm bar around ``iterable`` (or a manual bar if ``iterable`` is None) when ``enabled``."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, total=total, unit="frame", leave=False)


def _set_anchors(aligners: list[_FrameAligner]):
    """Callback for :func:`match_frames`: each frame's descriptor match is its anchor for chained verification."""

    def set_anchors(coarse_path: np.ndarray) -> None:
        for aligner, j in zip(aligners, coarse_path):
            aligner.anchor = int(j)

    return set_anchors


def _is_gray(frame: np.ndarray) -> bool:
    return bool((frame[..., 0] == frame[..., 1]).all() and (frame[..., 1] == frame[..., 2]).all())


def _frame_stream(source: Any, background: VideoInfo) -> tuple[Iterator[np.ndarray], VideoInfo | None]:
    """RGB uint8 frames from anything :class:`VideoReader` accepts, or from any other iterable of frames (a camera
    generator; checked frame by frame), and what is known about the video."""
    from hf_eff.video.io import to_rgb_uint8

    if isinstance(source, VideoReader) or not _is_plain_iterable(source):
        reader = _reader(source, "foreground video")
        _check_aspect(reader.info, background)
        return iter(reader), reader.info

    def checked() -> Iterator[np.ndarray]:
        size = None
        for i, frame in enumerate(source):
            rgb = to_rgb_uint8(frame, f"foreground video frame {i}")
            if size is None:
                size = rgb.shape
                _check_aspect(VideoInfo(rgb.shape[1], rgb.shape[0], None, None, _is_gray(rgb)), background)
            elif rgb.shape != size:
                raise ValueError(f"foreground video: frame {i} has shape {rgb.shape}, frame 0 has {size}")
            yield rgb

    return checked(), None


def _is_plain_iterable(source: Any) -> bool:
    """An iterator or generator of frames (not a path, array, tensor, list or image, which VideoReader takes)."""
    return hasattr(source, "__next__")
