"""Trainer checkpoints of an HD-CNN carry the hierarchy (config) and resume to the uninterrupted result."""

import numpy as np
import torch


def _setup(output_dir, max_steps):
    from datasets import Dataset
    from transformers import TrainingArguments

    from hf_eff import HDCNNConfig, HDCNNForImageClassification

    torch.manual_seed(0)
    config = HDCNNConfig(
        num_channels=1, num_labels=4, cnn_channels=[4, 8], cnn_convs_per_stage=1,
        coarse_members=[[0, 1, 2], [2, 3]], coarse_names=["low", "high"],
    )  # fmt: skip
    rng = np.random.default_rng(0)
    data = Dataset.from_dict(
        {"pixel_values": rng.normal(size=(32, 1, 8, 8)).astype("float32").tolist(), "labels": rng.integers(0, 4, 32)}
    ).with_format("torch")
    args = TrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=8, max_steps=max_steps, learning_rate=0.01,
        save_strategy="steps", save_steps=2, report_to="none", use_cpu=True, disable_tqdm=True, seed=0,
    )  # fmt: skip
    return HDCNNForImageClassification(config), args, data


def test_resume_from_checkpoint_matches_uninterrupted_training(tmp_path):
    from transformers import AutoConfig, Trainer

    model, args, data = _setup(tmp_path, 4)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(model=model, args=args, train_dataset=data).train()  # saves checkpoint-2 on the way
    checkpoint = tmp_path / "checkpoint-2"
    assert AutoConfig.from_pretrained(checkpoint).coarse_names == ["low", "high"]  # the hierarchy is in the checkpoint
    resumed, args, data = _setup(tmp_path, 4)  # a fresh process's model, resumed half-way
    Trainer(model=resumed, args=args, train_dataset=data).train(resume_from_checkpoint=str(checkpoint))
    for key, value in model.state_dict().items():
        assert torch.allclose(resumed.state_dict()[key].float(), value.float(), atol=1e-6), key
    assert not torch.equal(model.state_dict()["coarse.classifier.weight"], initial["coarse.classifier.weight"])
