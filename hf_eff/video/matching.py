"""Spatio-temporal frame matching: which background frame was filmed from the viewpoint of each foreground frame.

Both videos are handheld passes over roughly the same camera path, at different speeds. The match
``pi: foreground index -> background index`` is therefore (almost) monotone with a bounded local rate. The efficient
matcher exploits that temporal smoothness twice [D; the paper's exact algorithm is not known, U]:

1. **Cheap stage, coarse-to-fine monotone alignment of frame descriptors.** A dynamic program finds the minimum-cost
   path ``pi`` with steps ``pi(i) - pi(i-1)`` in ``[-max_back, max_step]`` (free start and end in the background
   video, so either video may start or stop earlier). It is solved exactly on temporally downsampled descriptors,
   and each finer level only searches a band of ``radius`` frames around the projected coarser path (as in FastDTW),
   so the number of descriptor comparisons grows linearly with the video length instead of as ``n * m``.
2. **Expensive stage, windowed geometric verification.** Only the ``2 * window + 1`` background frames around the
   coarse match are aligned geometrically and scored by the residual after alignment; a second monotone dynamic
   program over those scores picks the final match. That is ``n * (2 * window + 1)`` alignments instead of ``n * m``.

Error bound intuition [D]: if the true path moves at most ``max_step`` frames per frame and the coarse path is within
``radius`` frames of it at each level, the band contains the true path; the verification window then absorbs the
descriptor's error of up to ``window`` frames.

``strategy="online"`` (:class:`OnlineMatcher`) decides each frame as it arrives, for streams (a camera, or a file
too long to plan): it searches the descriptor band the previous match allows and verifies a window around the best
descriptor; a greedy version of the same two stages, with no look-ahead [D; spec strategy (c)].

``strategy="brute-force"`` verifies every pair and takes each row's best frame independently: the quadratic
baseline the efficient matcher is compared with.

This module is numpy only; the geometric scoring function is passed in (see :mod:`hf_eff.video.alignment`).
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hf_eff.video.descriptors import descriptor_distance, downsample_in_time


STRATEGIES = ("windowed", "brute-force", "online")


def default_max_step(num_foreground: int, num_background: int) -> int:
    """Largest forward step allowed per foreground frame: three times the average rate (a handheld pass can locally
    be much faster than on average), at least 2."""
    rate = (num_background - 1) / max(num_foreground - 1, 1)
    return max(2, math.ceil(3 * rate))


def monotone_path(
    row_costs: Sequence[np.ndarray],
    row_starts: np.ndarray,
    *,
    max_step: int,
    max_back: int = 0,
    jump_penalty: float = 2.0,
) -> np.ndarray:
    """Minimum-cost path through a banded cost matrix.

    Row ``i`` may only take the columns ``row_starts[i] .. row_starts[i] + len(row_costs[i]) - 1`` with costs
    ``row_costs[i]``; consecutive rows may move by ``-max_back .. max_step`` columns. The path may start and end in
    any column. Where no allowed step reaches a column (the band lost the path), or a jump is cheaper by more than
    ``jump_penalty``, the path jumps from the best column of the previous row, so the result is always defined.

    Cost: ``O(sum(len(row_costs)) * (max_step + max_back + 1))``.
    """
    if max_step < 0 or max_back < 0:
        raise ValueError(f"max_step and max_back must be >= 0, got {max_step} and {max_back}")
    n = len(row_costs)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    accumulated = np.asarray(row_costs[0], dtype=np.float64)
    predecessors: list[np.ndarray] = []
    for i in range(1, n):
        costs = np.asarray(row_costs[i], dtype=np.float64)
        columns = row_starts[i] + np.arange(len(costs))
        best = np.full(len(costs), np.inf)
        best_from = np.full(len(costs), -1, dtype=np.int64)
        for delta in (1, *range(0, -max_back - 1, -1), *range(2, max_step + 1)):  # prefer a step of 1 on ties
            source = columns - delta
            offset = source - row_starts[i - 1]
            inside = (offset >= 0) & (offset < len(accumulated))
            candidate = np.where(inside, accumulated[np.clip(offset, 0, len(accumulated) - 1)], np.inf)
            better = candidate < best
            best = np.where(better, candidate, best)
            best_from = np.where(better, source, best_from)
        jump_from = int(np.argmin(accumulated))
        jump_cost = accumulated[jump_from] + jump_penalty
        jump = best > jump_cost
        best = np.where(jump, jump_cost, best)
        best_from = np.where(jump, row_starts[i - 1] + jump_from, best_from)
        accumulated = costs + best
        predecessors.append(best_from)
    path = np.empty(n, dtype=np.int64)
    path[-1] = row_starts[-1] + int(np.argmin(accumulated))
    for i in range(n - 1, 0, -1):
        path[i - 1] = predecessors[i - 1][path[i] - row_starts[i]]
    return path


@dataclass
class CoarsePath:
    path: np.ndarray  # (n,) background index per foreground frame
    comparisons: int  # descriptor pairs compared, over all levels


def coarse_to_fine_path(
    foreground: np.ndarray,
    background: np.ndarray,
    *,
    radius: int = 3,
    max_step: int | None = None,
    max_back: int = 0,
    full_search_cells: int = 4096,
) -> CoarsePath:
    """Monotone descriptor alignment in linear time (see the module docstring).

    ``foreground (n, d)`` and ``background (m, d)`` are unit-norm descriptors. Levels whose ``n * m`` is at most
    ``full_search_cells`` are solved on the full cost matrix; ``radius`` is the band half-width at finer levels.
    """
    n, m = len(foreground), len(background)
    if max_step is None:
        max_step = default_max_step(n, m)
    if n * m <= full_search_cells or n < 4 or m < 4:
        costs = descriptor_distance(foreground, background)
        return CoarsePath(monotone_path(costs, np.zeros(n, np.int64), max_step=max_step, max_back=max_back), n * m)
    coarse = coarse_to_fine_path(
        downsample_in_time(foreground),
        downsample_in_time(background),
        radius=radius,
        max_step=max_step,
        max_back=max_back,
        full_search_cells=full_search_cells,
    )
    centre = np.minimum(2 * coarse.path[np.arange(n) // 2], m - 1)
    # the band of row i covers the projections of rows i-1, i, i+1, so a step between bands always exists
    neighbours = np.stack([np.roll(centre, 1), centre, np.roll(centre, -1)])
    neighbours[0, 0], neighbours[2, -1] = centre[0], centre[-1]
    starts = np.clip(neighbours.min(axis=0) - radius, 0, m - 1)
    stops = np.clip(neighbours.max(axis=0) + 1 + radius, 0, m - 1)  # inclusive; +1 covers the odd fine frame
    row_costs = [1.0 - background[starts[i] : stops[i] + 1] @ foreground[i] for i in range(n)]
    path = monotone_path(row_costs, starts, max_step=max_step, max_back=max_back)
    return CoarsePath(path, coarse.comparisons + int((stops - starts + 1).sum()))


def full_descriptor_path(
    foreground: np.ndarray, background: np.ndarray, *, max_step: int | None = None, max_back: int = 0
) -> CoarsePath:
    """The same monotone alignment on the full ``n x m`` cost matrix (the quadratic reference)."""
    n, m = len(foreground), len(background)
    max_step = default_max_step(n, m) if max_step is None else max_step
    costs = descriptor_distance(foreground, background)
    return CoarsePath(monotone_path(costs, np.zeros(n, np.int64), max_step=max_step, max_back=max_back), n * m)


@dataclass
class FrameMatches:
    """Result of :func:`match_frames`.

    Attributes:
        matches: ``(n,)`` background index chosen for each foreground frame.
        coarse_path: ``(n,)`` the descriptor-stage path (equal to ``matches`` without verification).
        costs: ``(n,)`` verification cost of the chosen pair (``nan`` without verification).
        descriptor_comparisons: descriptor pairs compared (cheap operations).
        verifications: geometric alignments scored (expensive operations).
        strategy: ``"windowed"`` or ``"brute-force"``.
    """

    matches: np.ndarray
    coarse_path: np.ndarray
    costs: np.ndarray
    descriptor_comparisons: int
    verifications: int
    strategy: str


VerifyFn = Callable[[int, int], float]


def match_frames(
    foreground: np.ndarray,
    background: np.ndarray,
    verify: VerifyFn | None = None,
    *,
    strategy: str = "windowed",
    radius: int = 3,
    window: int = 2,
    max_step: int | None = None,
    max_back: int = 0,
    progress: Callable[[int], None] | None = None,
    on_coarse_path: Callable[[np.ndarray], None] | None = None,
) -> FrameMatches:
    """Match every foreground frame to a background frame.

    Args:
        foreground, background: unit-norm frame descriptors, ``(n, d)`` and ``(m, d)``.
        verify: ``verify(i, j) -> cost`` (lower is better, ``inf`` if the pair cannot be aligned), the expensive
            geometric check. Without it the descriptor path is the answer.
        strategy: ``"windowed"`` (linear cost) or ``"brute-force"`` (verify all ``n * m`` pairs).
        radius: band half-width of the coarse-to-fine descriptor alignment.
        window: background frames verified on each side of the descriptor match.
        max_step, max_back: allowed forward / backward step of the match per foreground frame (``None``: automatic,
            see :func:`default_max_step`).
        progress: called with the number of foreground frames just finished (for a progress bar).
        on_coarse_path: called with the descriptor path before verification starts (``windowed`` only), e.g. to
            align each frame once with its descriptor match and chain the candidates around it from there.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if radius < 0 or window < 0:
        raise ValueError(f"radius and window must be >= 0, got {radius} and {window}")
    n, m = len(foreground), len(background)
    max_step = default_max_step(n, m) if max_step is None else max_step

    if strategy == "brute-force":
        coarse = full_descriptor_path(foreground, background, max_step=max_step, max_back=max_back)
        if verify is None:
            return FrameMatches(coarse.path, coarse.path, np.full(n, np.nan), coarse.comparisons, 0, strategy)
        costs = np.empty((n, m))
        for i in range(n):
            costs[i] = [verify(i, j) for j in range(m)]
            if progress is not None:
                progress(1)
        # a row where no pair could be aligned falls back to the descriptor's choice
        matches = np.where(np.isfinite(costs).any(axis=1), np.argmin(costs, axis=1), coarse.path)
        return FrameMatches(matches, coarse.path, costs[np.arange(n), matches], coarse.comparisons, n * m, strategy)

    coarse = coarse_to_fine_path(foreground, background, radius=radius, max_step=max_step, max_back=max_back)
    if on_coarse_path is not None:
        on_coarse_path(coarse.path)
    if verify is None:
        return FrameMatches(coarse.path, coarse.path, np.full(n, np.nan), coarse.comparisons, 0, strategy)
    starts = np.clip(coarse.path - window, 0, m - 1)
    stops = np.clip(coarse.path + window, 0, m - 1)
    row_costs = []
    for i in range(n):
        row_costs.append(np.array([verify(i, j) for j in range(starts[i], stops[i] + 1)], dtype=np.float64))
        if progress is not None:
            progress(1)
    verifications = int(sum(len(c) for c in row_costs))
    # pairs that could not be aligned get a finite, worst-case cost so the path stays defined; a row where no
    # candidate could be aligned falls back to the descriptor's choice
    finite = np.concatenate(row_costs)
    finite = finite[np.isfinite(finite)]
    worst = float(finite.max()) * 2 + 1 if finite.size else 1.0
    for i, costs in enumerate(row_costs):
        if not np.isfinite(costs).any():
            costs[:] = np.where(starts[i] + np.arange(len(costs)) == coarse.path[i], 0.0, worst)
    row_costs = [np.where(np.isfinite(c), c, worst) for c in row_costs]
    matches = monotone_path(row_costs, starts, max_step=max_step, max_back=max_back, jump_penalty=worst)
    chosen = np.array([row_costs[i][matches[i] - starts[i]] for i in range(n)])
    return FrameMatches(matches, coarse.path, chosen, coarse.comparisons, verifications, strategy)


class OnlineMatcher:
    """Frame-by-frame matching for streams: each frame's match is decided when it arrives, in constant memory.

    The first frame searches every background descriptor; each later frame searches only the band
    ``previous - max_back .. previous + max_step`` that temporal smoothness allows. Its best descriptor
    (the *anchor*) and the ``window`` frames on each side (inside the band) are the candidates that are verified
    geometrically; :meth:`choose` takes the one with the lowest verification cost (the anchor if none could be
    verified).

    >>> matcher = OnlineMatcher(background_descriptors, window=2, max_step=3)
    >>> anchor, candidates = matcher.candidates(descriptor)
    >>> match = matcher.choose(candidates, [verify(j) for j in candidates], anchor)
    """

    def __init__(self, background: np.ndarray, *, window: int = 2, max_step: int = 3, max_back: int = 0):
        if window < 0 or max_step < 0 or max_back < 0:
            raise ValueError(f"window, max_step and max_back must be >= 0, got {window}, {max_step}, {max_back}")
        if len(background) == 0:
            raise ValueError("OnlineMatcher needs at least one background descriptor")
        self.background = background
        self.window = window
        self.max_step = max_step
        self.max_back = max_back
        self.previous: int | None = None
        self.descriptor_comparisons = 0
        self.verifications = 0

    def candidates(self, descriptor: np.ndarray) -> tuple[int, list[int]]:
        """The best descriptor match in the allowed band and the background frames to verify around it."""
        m = len(self.background)
        if self.previous is None:
            low, high = 0, m - 1
        else:
            low, high = max(0, self.previous - self.max_back), min(m - 1, self.previous + self.max_step)
        costs = 1.0 - self.background[low : high + 1] @ descriptor
        self.descriptor_comparisons += len(costs)
        anchor = low + int(np.argmin(costs))
        window = range(max(low, anchor - self.window), min(high, anchor + self.window) + 1)
        return anchor, list(window)

    def choose(self, candidates: Sequence[int], costs: Sequence[float], anchor: int) -> int:
        """Record and return the candidate with the lowest finite cost (ties: the earlier frame), or ``anchor`` when
        no candidate could be verified."""
        if len(candidates) != len(costs) or not candidates:
            raise ValueError(f"got {len(candidates)} candidates and {len(costs)} costs")
        self.verifications += len(costs)
        costs = np.asarray(costs, dtype=np.float64)
        best = int(np.argmin(costs))
        self.previous = int(candidates[best]) if np.isfinite(costs[best]) else int(anchor)
        return self.previous
