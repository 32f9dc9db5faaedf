"""Causal-LM token losses, the meta-set objective, Data Parameters and argument checks."""

import pytest
import torch
from datasets import Dataset
from ilr_testkit import TinyClassifier, args, blobs
from safetensors.torch import load_file

from hf_eff.callbacks.instance_lr import (
    DataParametersCallback,
    DataParametersConfig,
    InstanceLRCallback,
    InstanceLRConfig,
    InstanceLRTrainer,
)
from hf_eff.callbacks.instance_lr.losses import per_sample_loss


def test_token_loss_is_the_mean_over_each_samples_valid_tokens():
    logits = torch.randn(2, 4, 5)
    labels = torch.tensor([[1, 2, -100, -100], [0, 3, 4, 1]])
    losses = per_sample_loss(logits, labels, "causal_lm")
    first = torch.nn.functional.cross_entropy(logits[0, :1], labels[0, 1:2])
    second = torch.nn.functional.cross_entropy(logits[1, :3], labels[1, 1:])
    torch.testing.assert_close(losses, torch.stack([first, second]))


def test_causal_lm_rates_are_learned(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=16,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 32, (24, 8), generator=generator)
    labels = ids.clone()
    labels[::2, 5:] = -100  # uneven lengths
    data = Dataset.from_dict(
        {"input_ids": ids.tolist(), "labels": labels.tolist(), "sample_idx": list(range(24))}
    ).with_format("torch")
    callback = InstanceLRCallback(horizon=1, max_rate=10.0)
    InstanceLRTrainer(
        model=model,
        args=args(tmp_path, max_steps=4, per_device_train_batch_size=6),
        train_dataset=data,
        callbacks=[callback],
    ).train()
    assert callback._task == "causal_lm"
    assert torch.isfinite(callback.log_rates).all() and (callback.log_rates != 0).sum() == 18  # 3 batches updated


def test_meta_set_rates_favour_the_target_distribution(tmp_path):
    """Rates learned against a meta set of classes 0-1 only: rows of those classes end with higher rates."""
    data = blobs(n=256)
    target = blobs(n=64, seed=0, index=False).filter(lambda row: row["label"] < 2)
    callback = InstanceLRCallback(meta_objective="meta_set", meta_dataset=target, meta_batch_size=32, horizon=4)
    InstanceLRTrainer(
        model=TinyClassifier(), args=args(tmp_path, max_steps=48), train_dataset=data, callbacks=[callback]
    ).train()
    in_target = data["label"][:] < 2
    assert callback.rates[in_target].mean() > callback.rates[~in_target].mean()


def test_meta_set_needs_a_meta_dataset(tmp_path):
    callback = InstanceLRCallback(meta_objective="meta_set")
    trainer = InstanceLRTrainer(
        model=TinyClassifier(), args=args(tmp_path), train_dataset=blobs(), callbacks=[callback]
    )
    with pytest.raises(ValueError, match="needs a non-empty meta_dataset"):
        trainer.train()


def test_data_parameters_raise_temperatures_of_flipped_labels_and_resume(tmp_path):
    data = blobs(n=320, noise=0.4)
    settings = {"max_steps": 160, "save_strategy": "steps", "save_steps": 80}
    callback = DataParametersCallback(learn_class=True, lr_instance=0.5, corrupt_column="is_corrupt")
    torch.manual_seed(0)
    InstanceLRTrainer(
        model=TinyClassifier(), args=args(tmp_path, **settings), train_dataset=data, callbacks=[callback]
    ).train()
    corrupt = data["is_corrupt"][:].bool()
    temperatures = callback.row_values()
    assert temperatures[corrupt].mean() > 1.1 * temperatures[~corrupt].mean()
    bound = torch.log(torch.tensor(20.0)).item()
    assert callback.instance_log_temperatures.abs().max() <= bound + 1e-6

    stored = load_file(tmp_path / "checkpoint-80" / "data_parameters.safetensors")
    assert {"instance_log_temperatures", "class_log_temperatures", "momentum.instance"} <= set(stored)
    resumed = DataParametersCallback(learn_class=True, lr_instance=0.5, corrupt_column="is_corrupt")
    torch.manual_seed(0)
    InstanceLRTrainer(
        model=TinyClassifier(), args=args(tmp_path, **settings), train_dataset=data, callbacks=[resumed]
    ).train(resume_from_checkpoint=str(tmp_path / "checkpoint-80"))
    torch.testing.assert_close(resumed.row_values(), temperatures, rtol=0, atol=1e-5)


def test_data_parameters_move_only_batch_members(tmp_path):
    callback = DataParametersCallback()
    InstanceLRTrainer(
        model=TinyClassifier(), args=args(tmp_path, max_steps=1, per_device_train_batch_size=8), train_dataset=blobs(),
        callbacks=[callback],
    ).train()  # fmt: skip
    assert (callback.instance_log_temperatures != 0).sum() == 8


@pytest.mark.parametrize(
    ("cls", "kwargs", "error", "match"),
    [
        (InstanceLRConfig, {"rate_lr": 0}, ValueError, "rate_lr"),
        (InstanceLRConfig, {"init_rate": 20.0}, ValueError, "init_rate"),
        (InstanceLRConfig, {"meta_objective": "validation"}, ValueError, "meta_objective"),
        (InstanceLRConfig, {"horizon": 0}, ValueError, "horizon"),
        (InstanceLRConfig, {"per_class": True, "task": "causal_lm"}, ValueError, "per_class"),
        (InstanceLRConfig, {"index_column": ""}, TypeError, "index_column"),
        (DataParametersConfig, {"learn_instance": False}, ValueError, "learn_class"),
        (DataParametersConfig, {"momentum": 1.0}, ValueError, "momentum"),
        (DataParametersConfig, {"wd_instance": -1.0}, ValueError, "wd_instance"),
    ],
)
def test_bad_arguments_are_refused(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)


def test_callback_takes_a_config_or_keywords_not_both():
    assert InstanceLRCallback(InstanceLRConfig(rate_lr=0.3)).config == InstanceLRCallback(rate_lr=0.3).config
    with pytest.raises(TypeError, match="not both"):
        InstanceLRCallback(InstanceLRConfig(), rate_lr=0.3)
    with pytest.raises(ValueError, match="meta_dataset is only used"):
        InstanceLRCallback(meta_dataset=[{"x": 1}])


def test_transformers_sequence_classifier_with_extra_columns(tmp_path):
    """A stock transformers classifier on a dataset with a text column: remove_unused_columns (default True) drops
    the text and keeps the index; the rates are learned on the classifier head."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=16, num_labels=3,
    )  # fmt: skip
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    ids = torch.randint(0, 40, (32, 8), generator=torch.Generator().manual_seed(0))
    data = Dataset.from_dict(
        {
            "text": [f"row {i}" for i in range(32)],
            "input_ids": ids.tolist(),
            "attention_mask": [[1] * 8] * 32,
            "label": [i % 3 for i in range(32)],
            "sample_idx": list(range(32)),
        }
    )
    callback = InstanceLRCallback(horizon=1, max_rate=10.0, per_class=True)
    InstanceLRTrainer(
        model=model, args=args(tmp_path, max_steps=3, per_device_train_batch_size=8), train_dataset=data,
        callbacks=[callback],
    ).train()  # fmt: skip
    assert callback._task == "classification" and callback._head is model.classifier
    assert (callback.log_rates != 0).sum() == 16 and callback.class_log_rates.shape == (3,)
