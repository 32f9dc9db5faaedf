"""Scores for foreground masks and frame matches (CDnet convention: pixel counts accumulated over the video).

The same functions back the ``evaluate`` metric ``hf_eff.metrics.load("mask_f1")``, which accumulates the counts
over a dataset of masks.
"""

import numpy as np


def mask_counts(predicted: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """True positive, false positive and false negative pixel counts of boolean masks of the same shape."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    if predicted.shape != truth.shape:
        raise ValueError(f"predicted masks have shape {predicted.shape} but truth has {truth.shape}")
    tp = int(np.count_nonzero(predicted & truth))
    fp = int(np.count_nonzero(predicted & ~truth))
    fn = int(np.count_nonzero(~predicted & truth))
    return tp, fp, fn


def scores_from_counts(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall, F1 and IoU (Jaccard) from pixel counts.

    An empty prediction has precision 1 by convention (it claims nothing wrong); F1 is 0 when either is 0; IoU is 1
    when both prediction and truth are empty.
    """
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    iou = tp / (tp + fp + fn) if tp + fp + fn else 1.0
    return {"precision": precision, "recall": recall, "f1": f1, "iou": iou}


def mask_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Micro-averaged precision, recall, F1 and IoU of boolean masks ``(..., H, W)`` (counts summed over all
    frames); see :func:`scores_from_counts` for the empty-mask conventions."""
    return scores_from_counts(*mask_counts(predicted, truth))


def match_accuracy(matches: np.ndarray, truth: np.ndarray, tolerance: int = 1) -> float:
    """Fraction of foreground frames whose matched background index is within ``tolerance`` of the truth."""
    matches, truth = np.asarray(matches), np.asarray(truth)
    if matches.shape != truth.shape:
        raise ValueError(f"matches have shape {matches.shape} but truth has {truth.shape}")
    return float(np.mean(np.abs(matches - truth) <= tolerance))
