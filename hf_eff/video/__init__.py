"""Background subtraction from two handheld videos (Hamid et al., arXiv 1404.5351), without transformers.

- :mod:`~hf_eff.video.io`: streaming reader for files / arrays / frame lists, and a writer (PyAV, or OpenCV).
- :mod:`~hf_eff.video.descriptors`: tiny-image frame descriptors.
- :mod:`~hf_eff.video.matching`: monotone, coarse-to-fine frame matching with windowed verification (linear cost),
  online matching for streams, and brute force for comparison.
- :mod:`~hf_eff.video.alignment`: ORB + RANSAC homographies with an ECC fallback; the verification residual.
- :mod:`~hf_eff.video.index`: what is computed once per frame; :class:`BackgroundIndex`, the background video's
  one-time indexing.
- :mod:`~hf_eff.video.refinement`: dense-flow refinement after the homography (parallax).
- :mod:`~hf_eff.video.masks`: exposure-robust differencing and mask clean-up.
- :mod:`~hf_eff.video.subtractor`: :class:`BackgroundSubtractor`, the method end to end (two passes or streaming).
- :mod:`~hf_eff.video.batch`: folders of video pairs in parallel processes.
- :mod:`~hf_eff.video.synthetic`: :func:`make_handheld_pair`, synthetic pairs with ground truth (parallax mode too).
- :mod:`~hf_eff.video.semireal`: :func:`make_semireal_pair`, pairs cut from a real handheld clip with a composited
  object.
- :mod:`~hf_eff.video.metrics`: mask precision / recall / F1 and match accuracy.

OpenCV and PyAV (the ``[video]`` extra) are imported only when a function needs them.
"""

from hf_eff.video.batch import VideoPair, find_pairs, process_pairs
from hf_eff.video.index import BackgroundIndex
from hf_eff.video.io import VideoReader, VideoWriter, read_video, write_video
from hf_eff.video.metrics import mask_scores, match_accuracy
from hf_eff.video.semireal import SemiRealPair, make_semireal_pair
from hf_eff.video.subtractor import BackgroundSubtractor, SubtractionResult, SubtractorSettings
from hf_eff.video.synthetic import HandheldPair, make_handheld_pair


__all__ = [
    "BackgroundIndex",
    "BackgroundSubtractor",
    "HandheldPair",
    "SemiRealPair",
    "SubtractionResult",
    "SubtractorSettings",
    "VideoPair",
    "VideoReader",
    "VideoWriter",
    "find_pairs",
    "make_handheld_pair",
    "make_semireal_pair",
    "mask_scores",
    "match_accuracy",
    "process_pairs",
    "read_video",
    "write_video",
]
