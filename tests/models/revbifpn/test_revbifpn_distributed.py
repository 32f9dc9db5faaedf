"""RevBiFPN under Trainer + DDP (2 CPU processes, gloo): the reversible gradients are synchronised."""

import pytest
import torch


def _train_on_rank(output_dir: str):
    import numpy as np
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    from hf_eff import RevBiFPNConfig, RevBiFPNForImageClassification

    torch.manual_seed(0)
    config = RevBiFPNConfig(
        stem_factor=2, channels=[12, 16, 24, 32], neck_channels=[12, 16, 24, 32], fc_features=32,
        num_extra_silos=0, num_labels=3, classifier_dropout=0.0,
    )  # fmt: skip
    model = RevBiFPNForImageClassification(config)
    rng = np.random.default_rng(0)  # same data on both ranks; the distributed sampler gives each a shard
    images = rng.normal(size=(8, 3, 16, 16)).astype("float32")
    data = Dataset.from_dict({"pixel_values": images.tolist(), "labels": rng.integers(0, 3, 8).tolist()})
    args = TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=2, max_steps=2, learning_rate=0.05,
        report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0,
    )  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=data.with_format("torch"))
    trainer.train()
    wrapped = type(trainer.model_wrapped).__name__
    return wrapped, {k: v.detach().clone() for k, v in model.named_parameters()}


@pytest.mark.multiprocess
def test_trainer_ddp_keeps_ranks_identical(tmp_path):
    from hf_eff.testing import run_distributed

    (wrapper0, state0), (wrapper1, state1) = run_distributed(_train_on_rank, str(tmp_path), world_size=2)
    assert wrapper0 == wrapper1 == "DistributedDataParallel"
    initial = _initial_state()
    changed = [k for k in state0 if k.endswith("weight") and not torch.equal(state0[k], initial[k])]
    assert changed, "training did not update the weights"
    # the ranks saw different shards: equal parameters need synchronised gradients (BatchNorm buffers are only
    # broadcast at the start of each forward, so they legitimately differ after the last local update)
    for key in state0:
        assert torch.equal(state0[key], state1[key]), key


def _initial_state():
    from hf_eff import RevBiFPNConfig, RevBiFPNForImageClassification

    torch.manual_seed(0)
    config = RevBiFPNConfig(
        stem_factor=2, channels=[12, 16, 24, 32], neck_channels=[12, 16, 24, 32], fc_features=32,
        num_extra_silos=0, num_labels=3, classifier_dropout=0.0,
    )  # fmt: skip
    return dict(RevBiFPNForImageClassification(config).named_parameters())
