"""The "craftmaps-classification" pipeline: loads from a saved folder, batches lists, top-k, images, errors."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from transformers import pipeline

from hf_eff import CraftMapsClassificationPipeline, CraftMapsConfig, CraftMapsForClassification


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def model(digits):
    x, y = digits
    config = CraftMapsConfig(
        num_features=64,
        n_components=128,
        num_labels=10,
        image_size=(8, 8),
        id2label={i: f"digit {i}" for i in range(10)},
    )
    return CraftMapsForClassification(config).fit((x[:1000], y[:1000]))


def test_pipeline_from_saved_folder_predicts_like_the_model(model, digits, tmp_path):
    x, _ = digits
    model.save_pretrained(tmp_path)
    classifier = pipeline("craftmaps-classification", model=str(tmp_path), device="cpu")
    assert isinstance(classifier, CraftMapsClassificationPipeline)
    expected = model.predict(torch.tensor(x[1000:1040])).tolist()
    predicted = [result[0]["label"] for result in classifier(list(x[1000:1040]), top_k=1)]
    assert predicted == [f"digit {i}" for i in expected]
    logits = model(features=torch.tensor(x[1000:1001])).logits.softmax(-1)[0]
    top = classifier(x[1000], top_k=3)
    assert [r["score"] for r in top] == pytest.approx(logits.topk(3).values.tolist(), rel=1e-6)


def test_list_is_a_batch_and_top_k_is_capped(model, digits):
    x, _ = digits
    classifier = pipeline("craftmaps-classification", model=model, device="cpu")
    results = classifier([x[0], x[1], x[2]], top_k=50)
    assert len(results) == 3 and all(len(r) == 10 for r in results)
    scores = [r["score"] for r in results[0]]
    assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, rel=1e-5)
    raw = classifier(x[0], top_k=2, function_to_apply="none")
    assert all(r["score"] <= 0 for r in raw)  # logits are negative squared distances


def test_images_and_dataset_rows_are_accepted(model, digits):
    from PIL import Image

    x, _ = digits
    classifier = pipeline("craftmaps-classification", model=model, device="cpu")
    from_vector = classifier(x[5], top_k=1)
    assert classifier(x[5].reshape(8, 8), top_k=1) == from_vector
    assert classifier({"pixel_values": torch.tensor(x[5]).reshape(1, 8, 8)}, top_k=1) == from_vector
    image = Image.fromarray((x[5].reshape(8, 8) * 255 / 16).astype(np.uint8))
    assert classifier(image, top_k=1)[0]["label"] == from_vector[0]["label"]  # l2 normalisation: scale-free
    assert classifier(image.resize((32, 32)), top_k=1)[0]["label"] in model.config.id2label.values()


def test_bad_inputs_raise(model):
    classifier = pipeline("craftmaps-classification", model=model, device="cpu")
    with pytest.raises(ValueError, match="must have 64 values"):
        classifier(np.ones(63, dtype=np.float32))
    with pytest.raises(ValueError, match="NaN or infinite"):
        classifier(np.full(64, np.nan, dtype=np.float32))
    with pytest.raises(TypeError, match="numpy array, a torch tensor, a PIL image"):
        classifier("not an input")
    with pytest.raises(ValueError, match="top_k must be an int >= 1"):
        classifier(np.ones(64, dtype=np.float32), top_k=0)
    with pytest.raises(ValueError, match="function_to_apply"):
        classifier(np.ones(64, dtype=np.float32), function_to_apply="sigmoid")


def test_task_name_alone_says_a_fitted_model_is_needed():
    # before: transformers raised KeyError: 'default'
    with pytest.raises(ValueError, match="needs a fitted CraftMapsForClassification: pass model=") as error:
        pipeline("craftmaps-classification")
    assert "\n" not in str(error.value)


def test_rows_of_a_default_format_dataset_and_key_dataset_are_accepted(model, digits):
    import datasets
    from transformers.pipelines.pt_utils import KeyDataset

    x, _ = digits
    rows = datasets.Dataset.from_dict({"features": x[:4].tolist(), "label": [0, 1, 2, 3]})  # rows hold plain lists
    classifier = pipeline("craftmaps-classification", model=model, device="cpu")
    expected = [classifier(vector, top_k=1) for vector in x[:4]]
    assert classifier(rows[0], top_k=1) == expected[0]
    assert list(classifier(KeyDataset(rows, "features"), top_k=1)) == expected
    assert list(classifier((row for row in rows), top_k=1)) == expected
    with pytest.raises(TypeError, match="a whole datasets.Dataset is one input to a pipeline: pass KeyDataset"):
        classifier(rows)
    with pytest.raises(TypeError, match="a list given to the pipeline is a batch"):
        classifier(x[0].tolist())  # a batch of 64 numbers, not one vector


def test_a_folder_of_another_model_is_refused_by_name_before_its_weights_load(tmp_path, capfd):
    from hf_eff import RevBiFPNConfig, RevBiFPNForImageClassification

    config = RevBiFPNConfig(
        stem_factor=2, channels=[12, 16, 24, 32], neck_channels=[12, 16, 24, 40], fc_features=48, num_labels=3
    )
    RevBiFPNForImageClassification(config).save_pretrained(tmp_path)
    capfd.readouterr()
    with pytest.raises(TypeError, match="needs a CraftMapsForClassification model, got a folder of a RevBiFPNConfig"):
        pipeline("craftmaps-classification", model=str(tmp_path))
    printed = capfd.readouterr()
    assert "UNEXPECTED" not in printed.out + printed.err  # no load report of the foreign weights
