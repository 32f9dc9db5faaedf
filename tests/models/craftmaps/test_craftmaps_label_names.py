"""``fit`` with class names: string labels through every data path, ClassLabel names kept, ranks that see names in
different orders agree."""

import datasets
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from hf_eff import CraftMapsConfig, CraftMapsForClassification
from hf_eff.testing import run_distributed


WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SORTED = sorted(WORDS)  # the classes fit assigns to names it learns from the data


def config(**overrides) -> CraftMapsConfig:
    return CraftMapsConfig(**{"num_features": 64, "n_components": 96, "num_labels": 10, "degree": 2, **overrides})


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return torch.tensor(x[:400], dtype=torch.float32), torch.tensor(y[:400])


@pytest.fixture(scope="module")
def by_index(digits):
    """The reference: the same data with integer labels in sorted-name order."""
    x, y = digits
    ids = torch.tensor([SORTED.index(WORDS[i]) for i in y])
    return CraftMapsForClassification(config()).fit((x, ids))


def assert_same_head(a, b):
    torch.testing.assert_close(a.classifier.weight, b.classifier.weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.classifier.bias, b.classifier.bias, rtol=1e-5, atol=1e-6)


def test_string_labels_become_sorted_named_classes(digits, by_index):
    x, y = digits
    names = [WORDS[i] for i in y]
    as_pair = CraftMapsForClassification(config()).fit((x, names), batch_size=64)
    as_stream = CraftMapsForClassification(config()).fit((x[i : i + 50], names[i : i + 50]) for i in range(0, 400, 50))
    rows = datasets.Dataset.from_dict({"features": x.tolist(), "label": names})
    as_dataset = CraftMapsForClassification(config()).fit(rows, batch_size=128)
    for model in (as_pair, as_stream, as_dataset):
        assert list(model.config.id2label.values()) == SORTED
        assert model.config.label2id["three"] == SORTED.index("three")
        assert_same_head(model, by_index)
    predicted = [as_pair.config.id2label[int(i)] for i in as_pair.predict(x[:100])]
    assert np.mean([p == n for p, n in zip(predicted, names[:100])]) > 0.9


def test_names_the_config_defines_keep_their_indices(digits):
    x, y = digits
    named = config(id2label=dict(enumerate(WORDS)))
    from_names = CraftMapsForClassification(named).fit((x, [WORDS[i] for i in y]))
    from_indices = CraftMapsForClassification(named).fit((x, y))
    assert list(from_names.config.id2label.values()) == WORDS
    assert_same_head(from_names, from_indices)


def test_class_label_names_reach_predictions_and_the_card(digits, tmp_path):
    x, y = digits
    names = [str(i) for i in range(10)]
    rows = datasets.Dataset.from_dict({"features": x.tolist(), "label": y.tolist()})
    rows = rows.cast_column("label", datasets.ClassLabel(names=names))
    model = CraftMapsForClassification(config()).fit(rows)
    assert model.config.id2label == dict(enumerate(names))
    model.save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text()
    assert "LABEL_3" not in card and "3" in card
    from transformers import pipeline

    classifier = pipeline("craftmaps-classification", model=str(tmp_path), device="cpu")
    assert classifier(x[3], top_k=1)[0]["label"] == names[int(model.predict(x[3:4]))]


def _fit_names_on_this_rank(x, y, names):
    # rank 0 sees the digits 0-4, rank 1 the digits 5-9 in reverse order: each knows only half of the names, and
    # their provisional indices disagree
    rows = np.flatnonzero(y.numpy() < 5) if torch.distributed.get_rank() == 0 else np.flatnonzero(y.numpy() >= 5)[::-1]
    rows = rows.copy()
    model = CraftMapsForClassification(config()).fit((x[torch.from_numpy(rows)], names[rows]))
    return list(model.config.id2label.values()), model.classifier.weight.detach().clone()


@pytest.mark.multiprocess
def test_ranks_that_see_names_in_different_orders_agree(digits, by_index):
    x, y = digits
    names = np.array([WORDS[i] for i in y])
    for labels, weight in run_distributed(_fit_names_on_this_rank, x, y, names, world_size=2):
        assert labels == SORTED
        torch.testing.assert_close(weight, by_index.classifier.weight, rtol=1e-4, atol=1e-5)
