"""Foreground-mask F1, precision, recall and IoU as an ``evaluate`` metric (load with
``hf_eff.metrics.load("mask_f1")``; nothing is fetched from a hub).

Each example is one mask (a 2-D array, nonzero = foreground), e.g. one frame of a video. Pixel counts are summed
over all examples before the scores are formed (micro average, the CDnet convention), so a video scores the same
whether its frames arrive one by one or in batches; the numbers equal :func:`hf_eff.video.mask_scores` of the
stacked masks.
"""

import datasets
import evaluate
import numpy as np

from hf_eff.video.metrics import mask_counts, scores_from_counts


_DESCRIPTION = __doc__
_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted masks, one 2-D array (or nested list) per example; nonzero = foreground.
    references: ground-truth masks, the same shape as the matching prediction.
Returns:
    f1, precision, recall, iou: floats in [0, 1], from pixel counts summed over all examples. An empty
    prediction has precision 1; IoU is 1 when prediction and truth are both empty.
Example:
    >>> metric = hf_eff.metrics.load("mask_f1")
    >>> metric.compute(predictions=[[[1, 0], [0, 0]]], references=[[[1, 1], [0, 0]]])["f1"]
    0.666...
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MaskF1(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        mask = datasets.Sequence(datasets.Sequence(datasets.Value("bool")))
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": mask, "references": mask}),
        )

    def _compute(self, predictions, references) -> dict[str, float]:
        total = np.zeros(3, dtype=np.int64)
        for index, (predicted, truth) in enumerate(zip(predictions, references, strict=True)):
            try:
                total += mask_counts(np.asarray(predicted, bool), np.asarray(truth, bool))
            except ValueError as error:
                raise ValueError(f"example {index}: {error}") from None
        return scores_from_counts(*(int(n) for n in total))
