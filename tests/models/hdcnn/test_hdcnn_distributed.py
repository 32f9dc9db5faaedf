"""HD-CNN under Trainer + DDP (2 CPU processes, gloo): both recipe stages keep the ranks identical."""

import pytest
import torch


def _train_on_rank(output_dir: str):
    import numpy as np
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    from hf_eff import HDCNNConfig, HDCNNForImageClassification
    from hf_eff.models.hdcnn import BranchPretrainer, freeze_for_branch_pretraining

    torch.manual_seed(0)
    config = HDCNNConfig(
        num_channels=1, num_labels=4, cnn_channels=[4, 8], cnn_convs_per_stage=1, coarse_members=[[0, 1, 2], [2, 3]]
    )
    model = HDCNNForImageClassification(config)
    rng = np.random.default_rng(0)  # same data on both ranks; the distributed sampler gives each a shard
    data = Dataset.from_dict(
        {"pixel_values": rng.normal(size=(16, 1, 8, 8)).astype("float32").tolist(), "labels": rng.integers(0, 4, 16)}
    ).with_format("torch")
    states = {"initial": {k: v.detach().clone() for k, v in model.named_parameters()}}
    for stage, trainer_class in (("branches", BranchPretrainer), ("global", Trainer)):
        if stage == "branches":
            freeze_for_branch_pretraining(model)
        else:
            model.requires_grad_(True)
        args = TrainingArguments(
            output_dir=f"{output_dir}/{stage}", per_device_train_batch_size=4, max_steps=2, learning_rate=0.05,
            report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0,
        )  # fmt: skip
        trainer = trainer_class(model=model, args=args, train_dataset=data)
        trainer.train()
        assert type(trainer.model_wrapped).__name__ == "DistributedDataParallel"
        states[stage] = {k: v.detach().clone() for k, v in model.named_parameters()}
    return states


@pytest.mark.multiprocess
def test_two_processes_end_with_identical_weights(tmp_path):
    from hf_eff.testing import run_distributed

    states0, states1 = run_distributed(_train_on_rank, str(tmp_path), world_size=2)
    for stage in ("branches", "global"):
        for key in states0[stage]:
            assert torch.equal(states0[stage][key], states1[stage][key]), (stage, key)
    initial, branches, final = states0["initial"], states0["branches"], states0["global"]
    # branch pre-training moves the fine components only; global fine-tuning moves everything
    for key in initial:
        assert torch.equal(branches[key], initial[key]) != key.startswith("fine."), key
    changed = [k for k in final if not torch.equal(final[k], branches[k])]
    assert any(k.startswith("shared.") for k in changed) and any(k.startswith("coarse.") for k in changed)
