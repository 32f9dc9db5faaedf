"""Scores for foreground masks and frame matches (CDnet convention: pixel counts accumulated over the video)."""

import numpy as np


def mask_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Micro-averaged precision, recall and F1 of boolean masks ``(..., H, W)`` (TP/FP/FN summed over all frames).

    An empty prediction has precision 1 by convention (it claims nothing wrong); F1 is 0 when either is 0.
    """
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    if predicted.shape != truth.shape:
        raise ValueError(f"predicted masks have shape {predicted.shape} but truth has {truth.shape}")
    tp = int(np.count_nonzero(predicted & truth))
    fp = int(np.count_nonzero(predicted & ~truth))
    fn = int(np.count_nonzero(~predicted & truth))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def match_accuracy(matches: np.ndarray, truth: np.ndarray, tolerance: int = 1) -> float:
    """Fraction of foreground frames whose matched background index is within ``tolerance`` of the truth."""
    matches, truth = np.asarray(matches), np.asarray(truth)
    if matches.shape != truth.shape:
        raise ValueError(f"matches have shape {matches.shape} but truth has {truth.shape}")
    return float(np.mean(np.abs(matches - truth) <= tolerance))
