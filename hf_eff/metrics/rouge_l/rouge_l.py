"""ROUGE-L F1 and exact match of generated text against references, as an ``evaluate`` metric (load with
``hf_eff.metrics.load("rouge_l")``; nothing is fetched from a hub).

ROUGE-L (Lin, 2004) scores the longest common subsequence of words: ``F1 = 2 P R / (P + R)`` with
``P = LCS / len(prediction)`` and ``R = LCS / len(reference)``. Words are found as in the reference ``rouge_score``
package without stemming: lower-cased, every run of characters other than ``a-z0-9`` is a separator. Exact match
compares the texts with surrounding whitespace stripped and inner runs of whitespace collapsed (case-sensitive).
Both are averaged over the examples.
"""

import re

import datasets
import evaluate


_DESCRIPTION = __doc__
_KWARGS_DESCRIPTION = """
Args:
    predictions: generated texts, one string per example.
    references: reference texts, one string per example.
Returns:
    rougeL: mean ROUGE-L F1 in [0, 1] (0 for an example where either side has no word).
    exact_match: fraction of examples whose whitespace-normalised texts are equal.
Example:
    >>> metric = hf_eff.metrics.load("rouge_l")
    >>> metric.compute(predictions=["Return the sum."], references=["Return the sum of values."])
    {'rougeL': 0.749..., 'exact_match': 0.0}
"""

_NON_WORD = re.compile(r"[^a-z0-9]+")


def words(text: str) -> list[str]:
    return [w for w in _NON_WORD.split(text.lower()) if w]


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence (dynamic programming over one row)."""
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        previous_diagonal = 0
        for j, y in enumerate(b, start=1):
            above = row[j]
            row[j] = previous_diagonal + 1 if x == y else max(row[j], row[j - 1])
            previous_diagonal = above
    return row[-1]


def rouge_l_f1(prediction: str, reference: str) -> float:
    p, r = words(prediction), words(reference)
    common = lcs_length(p, r) if p and r else 0
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def _normalise(text: str) -> str:
    return " ".join(text.split())


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RougeL(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Lin, C.-Y. (2004). ROUGE: A Package for Automatic Evaluation of Summaries.",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references) -> dict[str, float]:
        if not predictions:
            raise ValueError("rouge_l needs at least one prediction")
        pairs = list(zip(predictions, references, strict=True))
        return {
            "rougeL": sum(rouge_l_f1(p, r) for p, r in pairs) / len(pairs),
            "exact_match": sum(_normalise(p) == _normalise(r) for p, r in pairs) / len(pairs),
        }
