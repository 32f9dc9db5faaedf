"""Many video pairs at once: a folder of pairs, processed in parallel processes, each video streamed from disk.

Each pair is processed by one worker process (OpenCV limited to one thread there, so ``num_workers`` processes use
``num_workers`` cores): the worker streams the foreground video frame by frame, writes the object-only video and
the mask video as it goes, and returns a small JSON-able summary, so neither the parent nor a worker ever holds a
whole video. With ``num_workers=0`` the pairs are processed one after another in the calling process.
"""

import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


#: file extensions that :func:`find_pairs` looks at
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v")
#: the stem suffix that marks the background video of a pair
BACKGROUND_SUFFIX = "_background"


@dataclass(frozen=True)
class VideoPair:
    """One job: the video with the object, the video of the empty scene, and the name its outputs get."""

    name: str
    video: Path
    background_video: Path


def find_pairs(folder: str | os.PathLike) -> list[VideoPair]:
    """The pairs in ``folder``: each ``NAME_background.EXT`` with the ``NAME.EXT`` video next to it.

    Raises :class:`ValueError` for a folder without pairs, or with a video that belongs to no pair (nothing is
    silently skipped); files that are not videos (by extension) are ignored.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    videos = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()}
    pairs = []
    for stem, background in videos.items():
        name = stem[: -len(BACKGROUND_SUFFIX)]
        if stem.endswith(BACKGROUND_SUFFIX) and name in videos:
            pairs.append(VideoPair(name, videos[name], background))
    paired = {p.video for p in pairs} | {p.background_video for p in pairs}
    unpaired = [p.name for p in videos.values() if p not in paired]
    if unpaired and pairs:
        raise ValueError(
            f"{folder}: videos without their pair: {unpaired} (each NAME.EXT needs NAME{BACKGROUND_SUFFIX}.EXT)"
        )
    if not pairs:
        raise ValueError(
            f"{folder}: no video pairs found; name each pair NAME.mp4 (with the object) and NAME{BACKGROUND_SUFFIX}.mp4 "
            f"(any of {', '.join(VIDEO_EXTENSIONS)})"
        )
    return pairs


def process_pair(pair: VideoPair, output_dir: str | os.PathLike, settings: dict[str, Any]) -> dict[str, Any]:
    """Subtract the background of one pair, streaming: writes ``NAME_foreground.mp4`` and ``NAME_masks.mp4`` to
    ``output_dir`` and returns a summary (matches, alignment methods, foreground fraction per frame, seconds)."""
    import contextlib

    from hf_eff.video.io import VideoReader, VideoWriter
    from hf_eff.video.subtractor import BackgroundSubtractor, SubtractorSettings

    output_dir = Path(output_dir)
    start = time.perf_counter()
    subtractor = BackgroundSubtractor(SubtractorSettings(**settings))
    video = VideoReader(pair.video, f"{pair.name}: video")
    background = VideoReader(pair.background_video, f"{pair.name}: background_video")
    outputs = {
        "foreground": output_dir / f"{pair.name}_foreground.mp4",
        "masks": output_dir / f"{pair.name}_masks.mp4",
    }
    matches, methods, fractions = [], [], []
    with contextlib.ExitStack() as stack:
        writers = {k: stack.enter_context(VideoWriter(p, video.info.fps or 30.0)) for k, p in outputs.items()}
        for result in subtractor.frames(video, background):
            writers["foreground"].write(result.foreground)
            writers["masks"].write(np.repeat((result.mask * 255).astype(np.uint8)[..., None], 3, axis=2))
            matches.append(result.match)
            methods.append(result.alignment)
            fractions.append(round(float(result.mask.mean()), 4))
    return {
        "name": pair.name,
        "video": str(pair.video),
        "background_video": str(pair.background_video),
        "frames": len(matches),
        "matches": matches,
        "alignment": sorted(set(methods)),
        "foreground_fraction": fractions,
        "outputs": {k: str(p) for k, p in outputs.items()},
        "seconds": round(time.perf_counter() - start, 3),
    }


def _worker_init() -> None:
    from hf_eff.video._opencv import require_cv2

    require_cv2().setNumThreads(1)  # one process per core: OpenCV's own threads would oversubscribe them


def process_pairs(
    pairs: Sequence[VideoPair] | Iterable[VideoPair],
    output_dir: str | os.PathLike,
    settings: dict[str, Any] | None = None,
    *,
    num_workers: int = 2,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Process every pair (see :func:`process_pair`) with ``num_workers`` processes; summaries in input order.

    ``settings`` are :class:`~hf_eff.video.SubtractorSettings` fields. A pair that fails raises its error, naming
    the pair, after the pairs already running have finished.
    """
    from hf_eff.video.subtractor import SubtractorSettings

    pairs = list(pairs)
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
    settings = asdict(SubtractorSettings(**(settings or {})))  # validated here, before any process starts
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pairs), desc="video pairs", unit="pair")
    summaries: list[dict[str, Any] | None] = [None] * len(pairs)
    try:
        if num_workers == 0:
            for k, pair in enumerate(pairs):
                summaries[k] = _named(pair, process_pair, pair, output_dir, settings)
                if bar is not None:
                    bar.update(1)
        else:
            import multiprocessing

            context = multiprocessing.get_context("spawn")  # no fork of a parent that may hold threads / torch
            with ProcessPoolExecutor(num_workers, mp_context=context, initializer=_worker_init) as pool:
                futures = {pool.submit(process_pair, pair, output_dir, settings): k for k, pair in enumerate(pairs)}
                for future in as_completed(futures):
                    k = futures[future]
                    summaries[k] = _named(pairs[k], future.result)
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return summaries


def _named(pair: VideoPair, function, *args):
    """Call ``function(*args)``; an error names the pair it happened in."""
    try:
        return function(*args)
    except (ValueError, FileNotFoundError) as error:
        message = str(error)
        if not message.startswith(pair.name):
            message = f"{pair.name}: {message}"
        raise type(error)(message) from error
