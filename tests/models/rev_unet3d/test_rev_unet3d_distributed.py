"""Reversible 3D U-Net under Trainer + DDP (2 CPU processes, gloo): both ranks end with identical weights."""

import pytest
import torch


def _train_on_rank(output_dir: str):
    from rev_unet3d_helpers import tiny_model
    from transformers import Trainer, TrainingArguments

    from hf_eff.data.volumes import VolumeCropDataset, make_synthetic_brats

    model = tiny_model(seed=0)
    initial = {k: v.detach().clone() for k, v in model.named_parameters()}
    volumes = [make_synthetic_brats((20, 20, 20), seed=s) for s in range(2)]
    data = VolumeCropDataset(volumes, crop_size=(16, 16, 16), samples_per_volume=2)
    args = TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=1, max_steps=2, learning_rate=0.01,
        report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0,
    )  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=data)
    trainer.train()
    final = {k: v.detach().clone() for k, v in model.named_parameters()}
    return type(trainer.model_wrapped).__name__, trainer.args.world_size, initial, final


@pytest.mark.multiprocess
def test_trainer_ddp_keeps_ranks_identical(tmp_path):
    from hf_eff.testing import run_distributed

    results = run_distributed(_train_on_rank, str(tmp_path), world_size=2)
    (wrapper0, world0, initial, state0), (wrapper1, world1, _, state1) = results
    assert wrapper0 == wrapper1 == "DistributedDataParallel" and world0 == world1 == 2
    assert any(not torch.equal(state0[k], initial[k]) for k in state0), "training did not update the weights"
    for key in state0:  # the ranks saw different crops: equal weights need synchronised reversible gradients
        assert torch.equal(state0[key], state1[key]), key
