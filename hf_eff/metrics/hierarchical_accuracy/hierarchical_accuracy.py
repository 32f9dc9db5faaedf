"""Fine and coarse top-1 accuracy of a classifier over a two-level category hierarchy (HD-CNN)."""

import datasets
import evaluate
import numpy as np


_DESCRIPTION = """
Top-1 accuracy at both levels of a category hierarchy. ``accuracy`` is the usual fine-class accuracy;
``coarse_accuracy`` counts a prediction as right at the coarse level when the predicted class lies in a coarse
category of the true class. Give the hierarchy either as ``fine_to_coarse`` (a partition: the coarse category of
each class, e.g. a dataset's known grouping) or as ``coarse_members`` (the classes of each coarse category, which
may overlap, e.g. an HD-CNN config's ``coarse_members``). Without a hierarchy only ``accuracy`` is returned.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): predicted fine classes.
    references (`list[int]`): true fine classes.
    fine_to_coarse (`list[int]`, *optional*): coarse category of every fine class (a partition).
    coarse_members (`list[list[int]]`, *optional*): fine classes of every coarse category (may overlap).
Returns:
    accuracy (`float`), and with a hierarchy coarse_accuracy (`float`).
Example:
    >>> import hf_eff.metrics
    >>> metric = hf_eff.metrics.load("hierarchical_accuracy")
    >>> metric.compute(predictions=[0, 1, 3], references=[0, 2, 3], fine_to_coarse=[0, 1, 1, 2])
    {'accuracy': 0.6666666666666666, 'coarse_accuracy': 1.0}
"""

_CITATION = """
@inproceedings{yan2015hdcnn,
  title={HD-CNN: Hierarchical Deep Convolutional Neural Networks for Large Scale Visual Recognition},
  author={Yan, Zhicheng and Zhang, Hao and Piramuthu, Robinson and Jagadeesh, Vignesh and DeCoste, Dennis and
          Di, Wei and Yu, Yizhou},
  booktitle={ICCV}, year={2015}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class HierarchicalAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, fine_to_coarse=None, coarse_members=None):
        predictions, references = np.asarray(predictions, dtype=np.int64), np.asarray(references, dtype=np.int64)
        result = {"accuracy": float((predictions == references).mean())}
        if fine_to_coarse is not None and coarse_members is not None:
            raise ValueError("give the hierarchy as fine_to_coarse or as coarse_members, not both")
        if fine_to_coarse is not None:
            coarse_members = [
                np.flatnonzero(np.asarray(fine_to_coarse) == c).tolist() for c in np.unique(fine_to_coarse)
            ]
        if coarse_members is None:
            return result
        num_classes = max(max(group) for group in coarse_members) + 1
        if max(predictions.max(), references.max()) >= num_classes:
            raise ValueError(f"predictions/references hold classes >= {num_classes}, outside the hierarchy")
        membership = np.zeros((len(coarse_members), num_classes), dtype=bool)
        for k, group in enumerate(coarse_members):
            membership[k, group] = True
        shared = (membership[:, predictions] & membership[:, references]).any(axis=0)
        result["coarse_accuracy"] = float(shared.mean())
        return result
