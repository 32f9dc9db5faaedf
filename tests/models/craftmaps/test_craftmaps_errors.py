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


def test_fit_with_names_the_model_cannot_hold_says_so(model):
    with pytest.raises(
        ValueError, match="more than config.num_labels=3 classes: \\['bird', 'cat', 'dog'\\] and 'fox'"
    ):
        model.fit((torch.randn(4, 8), ["cat", "dog", "bird", "fox"]))
    with pytest.raises(ValueError, match="labels name 2 classes .* config.num_labels=3"):
        model.fit((torch.randn(2, 8), ["cat", "dog"]))
    named = CraftMapsForClassification(
        CraftMapsConfig(num_features=8, n_components=16, id2label={0: "cat", 1: "dog", 2: "bird"}, degree=2)
    )
    with pytest.raises(ValueError, match="label 'fox' is not a class of this model"):
        named.fit((torch.randn(2, 8), ["cat", "fox"]))
    with pytest.raises(ValueError, match="all class indices or all class names, got both"):
        model.fit([(torch.randn(2, 8), [0, 1]), (torch.randn(2, 8), ["cat", "dog"])])


def test_fit_with_a_class_label_column_of_another_size_says_so(model):
    data = Dataset.from_dict({"features": torch.randn(4, 8).tolist(), "label": ["a", "b", "c", "d"]})
    with pytest.raises(
        ValueError, match="'label' column has 4 classes .* config.num_labels=3: build it with num_labels=4"
    ):
        model.fit(data.class_encode_column("label"))


def test_fit_with_float_labels_asks_for_class_indices(model):
    with pytest.raises(
        ValueError, match="integer class indices in \\[0, 2\\] or class names, got dtype torch.float32"
    ):
        model.fit((torch.randn(2, 8), torch.tensor([0.0, 1.5])))
