"""CraftMapsForClassification: save/load round trips, one-pass fit, distributed fit, Trainer resume, errors."""

import json
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.datasets import load_digits
from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

from hf_eff import CraftMapsConfig, CraftMapsForClassification
from hf_eff.testing import run_distributed


def tiny_config(**overrides) -> CraftMapsConfig:
    values = {"num_features": 64, "n_components": 160, "num_labels": 10, "degree": 3, "coef0": 1.0, "seed": 1}
    return CraftMapsConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    return torch.tensor(x[order], dtype=torch.float32), torch.tensor(y[order])


@pytest.fixture(scope="module")
def fitted(digits):
    x, y = digits
    return CraftMapsForClassification(tiny_config()).fit((x[:1200], y[:1200]), batch_size=256)


def test_fit_in_one_pass_classifies_digits(fitted, digits):
    x, y = digits
    accuracy = (fitted.predict(x[1200:]) == y[1200:]).float().mean().item()
    assert accuracy > 0.95
    assert fitted.num_fit_samples == 1200


def test_fit_equals_closed_form_ridge_on_the_same_features(fitted, digits):
    x, y = digits
    z = fitted.embed(x[:1200]).double().numpy()
    targets = fitted.code_matrix.double().numpy()[y[:1200].numpy()]
    z1 = np.hstack([z, np.ones((len(z), 1))])
    penalty = np.diag([fitted.config.alpha] * z.shape[1] + [0.0])
    solution = np.linalg.solve(z1.T @ z1 + penalty, z1.T @ targets)
    np.testing.assert_allclose(
        fitted.classifier.weight.detach().double().numpy(), solution[:-1].T, rtol=1e-4, atol=1e-5
    )


def test_fit_streams_a_datasets_dataset_like_tensors(digits):
    datasets = pytest.importorskip("datasets")
    x, y = digits
    data = datasets.Dataset.from_dict(
        {"pixel_values": x[:300].reshape(-1, 1, 8, 8).tolist(), "label": y[:300].tolist()}
    )
    from_dataset = CraftMapsForClassification(tiny_config()).fit(data, batch_size=64)
    from_tensors = CraftMapsForClassification(tiny_config()).fit((x[:300], y[:300]), batch_size=300)
    torch.testing.assert_close(from_dataset.classifier.weight, from_tensors.classifier.weight, rtol=1e-5, atol=1e-6)


def test_fit_streams_a_generator_that_is_never_materialised(digits):
    x, y = digits
    consumed = []

    def stream():  # e.g. rows read from disk: yields batches once, never holds the whole set
        for start in range(0, 500, 100):
            consumed.append(start)
            yield x[start : start + 100], y[start : start + 100]

    streamed = CraftMapsForClassification(tiny_config()).fit(stream())
    whole = CraftMapsForClassification(tiny_config()).fit((x[:500], y[:500]), batch_size=500)
    assert consumed == [0, 100, 200, 300, 400] and streamed.num_fit_samples == 500
    torch.testing.assert_close(streamed.classifier.weight, whole.classifier.weight, rtol=1e-5, atol=1e-6)


def test_save_and_load_round_trip_through_auto_classes(fitted, digits, tmp_path):
    x, _ = digits
    fitted.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "README.md",
        "config.json",
        "configuration_craftmaps.py",  # auto_map: loadable with trust_remote_code=True
        "model.safetensors",
        "modeling_craftmaps.py",
    ]
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "hf_eff_craftmaps"
    stored = load_file(tmp_path / "model.safetensors")
    assert any(name.startswith("feature_map.blocks.") and name.endswith("projection") for name in stored)
    assert any(name.endswith("down.buckets") for name in stored)  # the random map is stored
    for auto in (AutoModel, AutoModelForImageClassification):
        loaded = auto.from_pretrained(tmp_path)
        assert isinstance(loaded, CraftMapsForClassification)
        torch.testing.assert_close(loaded(features=x[:50]).logits, fitted(features=x[:50]).logits, rtol=0, atol=0)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), CraftMapsConfig)
    card = (tmp_path / "README.md").read_text()
    assert "library_name: hf_eff" in card and "fitted on 1200 samples" in card


def test_random_map_is_a_function_of_the_seed():
    a, b = CraftMapsForClassification(tiny_config()), CraftMapsForClassification(tiny_config())
    c = CraftMapsForClassification(tiny_config(seed=2))
    x = torch.rand(4, 64)
    torch.testing.assert_close(a.embed(x), b.embed(x), rtol=0, atol=0)
    assert not torch.allclose(a.embed(x), c.embed(x))


def test_image_inputs_are_flattened(fitted, digits):
    x, _ = digits
    as_images = fitted(pixel_values=x[:5].reshape(5, 1, 8, 8)).logits
    torch.testing.assert_close(as_images, fitted(features=x[:5]).logits)


def test_loss_is_the_ridge_data_term(fitted, digits):
    x, y = digits
    out = fitted(features=x[:8], labels=y[:8])
    expected = 0.5 * (out.code_predictions - fitted.code_matrix[y[:8]]).square().sum(1).mean()
    torch.testing.assert_close(out.loss, expected)


def _fit_shard(x, y, rank_rows):
    rank = torch.distributed.get_rank()
    model = CraftMapsForClassification(tiny_config(n_components=64)).fit((x[rank_rows[rank]], y[rank_rows[rank]]))
    return model.classifier.weight.detach().clone()


@pytest.mark.multiprocess
def test_distributed_fit_sums_normal_equations_across_ranks(digits):
    x, y = digits
    x, y = x[:400], y[:400]
    shards = [torch.arange(0, 250), torch.arange(250, 400)]
    per_rank = run_distributed(_fit_shard, x, y, shards, world_size=2)
    single = CraftMapsForClassification(tiny_config(n_components=64)).fit((x, y)).classifier.weight
    for weight in per_rank:
        torch.testing.assert_close(weight, single, rtol=1e-4, atol=1e-5)


def test_trainer_checkpoint_keeps_the_random_map_and_resumes_exactly(digits, tmp_path):
    """Fine-tuning the head with Trainer: resuming from a checkpoint gives the uninterrupted run's weights."""
    datasets = pytest.importorskip("datasets")
    from transformers import Trainer, TrainingArguments

    x, y = digits
    data = datasets.Dataset.from_dict({"features": x[:64].tolist(), "labels": y[:64].tolist()})

    def train(output_dir: Path, resume: bool = False):
        model = CraftMapsForClassification(tiny_config(n_components=32, seed=5 if resume else 1))
        args = TrainingArguments(
            output_dir=str(output_dir),
            max_steps=4,
            save_steps=2,
            per_device_train_batch_size=16,
            learning_rate=0.05,
            use_cpu=True,
            report_to="none",
            disable_tqdm=True,
            seed=0,
            save_only_model=False,
        )
        trainer = Trainer(model=model, args=args, train_dataset=data)
        trainer.train(resume_from_checkpoint=str(output_dir / "checkpoint-2") if resume else None)
        return model

    full = train(tmp_path)
    resumed = train(tmp_path, resume=True)  # built from another seed: the checkpoint must restore the map
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def test_push_to_hub_uploads_weights_and_card(fitted):
    uploaded = {}

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        uploaded.update({p.name: p.read_bytes() for p in Path(folder_path).iterdir()})

    with (
        mock.patch("huggingface_hub.HfApi.create_repo", return_value=mock.Mock(repo_id="me/craftmaps")),
        mock.patch("huggingface_hub.HfApi.upload_folder", upload_folder),
    ):
        fitted.push_to_hub("me/craftmaps")
    assert {"config.json", "model.safetensors", "README.md"} <= set(uploaded)
    assert b"craftmaps-classification" in uploaded["README.md"]


def test_config_and_input_errors(fitted):
    with pytest.raises(ValueError, match="degree must be an int >= 1"):
        CraftMapsConfig(degree=0)
    with pytest.raises(ValueError, match="must be larger than n_components"):
        CraftMapsConfig(n_components=512, n_components_up=256)
    with pytest.raises(ValueError, match="up must be one of"):
        CraftMapsConfig(up="fastfood")
    with pytest.raises(ValueError, match="num_channels \\* image_size"):
        CraftMapsConfig(num_features=64, image_size=(7, 7))
    with pytest.raises(ValueError, match="expected 64 features per sample"):
        fitted.predict(torch.rand(2, 63))
    with pytest.raises(ValueError, match="NaN or infinite"):
        fitted.predict(torch.full((2, 64), float("inf")))
    with pytest.raises(ValueError, match="exactly one of"):
        fitted()
    with pytest.raises(ValueError, match=r"labels must be in \[0, 9\]"):
        CraftMapsForClassification(tiny_config()).fit((torch.rand(3, 64), torch.tensor([0, 1, 10])))
