"""What a new user sees when ``fit`` gets data it cannot use: the argument and what was expected, not internals."""

import pytest
import torch
from datasets import Dataset

from hf_eff import CraftMapsConfig, CraftMapsForClassification


@pytest.fixture
def model():
    config = CraftMapsConfig(num_features=8, n_components=16, num_labels=3, degree=2, seed=0)
    return CraftMapsForClassification(config)


@pytest.mark.parametrize(
    "data",
    [
        (torch.zeros(0, 8), torch.zeros(0, dtype=torch.long)),
        Dataset.from_dict({"features": [], "label": []}),
        [],
    ],
    ids=["tensors", "dataset", "iterable"],
)
def test_fit_on_empty_data_says_so(model, data):
    with pytest.raises(ValueError, match="fit\\(\\) got no training samples: data is empty"):
        model.fit(data)


def test_fit_with_string_labels_asks_for_class_indices(model):
    data = Dataset.from_dict({"features": torch.randn(4, 8).tolist(), "label": ["cat", "dog", "cat", "bird"]})
    with pytest.raises(
        ValueError, match="labels must be integer class indices in \\[0, 2\\], got values such as 'cat'"
    ):
        model.fit(data)
    with pytest.raises(ValueError, match="integer class indices.*'cat'"):
        model.fit((torch.randn(2, 8), ["cat", "dog"]))


def test_fit_with_float_labels_asks_for_class_indices(model):
    with pytest.raises(ValueError, match="integer class indices in \\[0, 2\\], got dtype torch.float32"):
        model.fit((torch.randn(2, 8), torch.tensor([0.0, 1.5])))
