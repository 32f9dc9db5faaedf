"""RevBiFPN inside the Hugging Face workflow: Trainer (with resume), image processor through AutoImageProcessor."""

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import AutoImageProcessor, Trainer, TrainingArguments

from hf_eff import RevBiFPNConfig, RevBiFPNForImageClassification, RevBiFPNImageProcessor


pytestmark = pytest.mark.usefixtures("single_thread")


def tiny_model() -> RevBiFPNForImageClassification:
    torch.manual_seed(0)
    config = RevBiFPNConfig(
        stem_factor=2,
        channels=[12, 16, 24, 32],
        neck_channels=[12, 16, 24, 32],
        fc_features=32,
        num_extra_silos=0,
        num_labels=3,
        drop_path_rate=0.1,
        classifier_dropout=0.1,
    )
    return RevBiFPNForImageClassification(config)


def dataset() -> Dataset:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 16)
    images = rng.normal(size=(16, 3, 16, 16)).astype("float32") + labels[:, None, None, None]
    return Dataset.from_dict({"pixel_values": images.tolist(), "labels": labels.tolist()}).with_format("torch")


def train(tmp_path, max_steps: int, resume: bool = False) -> RevBiFPNForImageClassification:
    model = tiny_model()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=max_steps,
        learning_rate=1e-2,
        lr_scheduler_type="constant",
        save_strategy="steps",
        save_steps=2,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset())
    trainer.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2") if resume else None)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses and all(np.isfinite(losses))
    return model


def test_trainer_resume_reproduces_an_uninterrupted_run(tmp_path):
    straight = train(tmp_path / "a", max_steps=4)
    train(tmp_path / "b", max_steps=2)
    resumed = train(tmp_path / "b", max_steps=4, resume=True)
    assert (tmp_path / "b" / "checkpoint-2" / "model.safetensors").exists()
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)


def test_image_processor_round_trip(tmp_path):
    processor = RevBiFPNImageProcessor.for_resolution(64)
    processor.save_pretrained(tmp_path)
    RevBiFPNConfig.from_variant("s0").save_pretrained(tmp_path)
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, RevBiFPNImageProcessor)
    image = (np.random.default_rng(0).random((90, 120, 3)) * 255).astype("uint8")
    pixel_values = loaded(image, return_tensors="pt")["pixel_values"]
    assert pixel_values.shape == (1, 3, 64, 64)
    assert torch.equal(pixel_values, processor(image, return_tensors="pt")["pixel_values"])
    with pytest.raises(ValueError, match="divisible by 32"):
        RevBiFPNImageProcessor.for_resolution(100)
