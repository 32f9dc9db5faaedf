import pytest
import torch
from ilr_testkit import TinyClassifier, args, blobs

from hf_eff.callbacks.instance_lr import DataParametersCallback, InstanceLRCallback, InstanceLRTrainer
from hf_eff.testing import run_distributed


# imported above, before the fork: a freshly started worker would spend most of the test importing transformers
def _train_on_this_rank(output_dir: str, method: str):
    import torch.distributed as dist

    torch.manual_seed(0)
    if method == "instance_lr":
        callback = InstanceLRCallback(rate_lr=0.5, horizon=2, per_class=True, max_rate=10.0)
    else:
        callback = DataParametersCallback(learn_class=True)
    trainer = InstanceLRTrainer(
        model=TinyClassifier(),
        args=args(output_dir, max_steps=6, gradient_accumulation_steps=2, per_device_train_batch_size=8),
        train_dataset=blobs(noise=0.3),
        callbacks=[callback],
    )
    assert trainer.args.world_size == 2
    trainer.train()
    values = callback.log_rates if method == "instance_lr" else callback.instance_log_temperatures.detach()
    return dist.get_rank(), values.clone()


@pytest.mark.multiprocess
@pytest.mark.parametrize("method", ["instance_lr", "data_parameters"])
def test_two_processes_end_with_identical_values(tmp_path, method):
    (rank0, values0), (rank1, values1) = run_distributed(_train_on_this_rank, str(tmp_path), method, world_size=2)
    assert (rank0, rank1) == (0, 1)
    assert torch.equal(values0, values1)
    # 6 steps x 2 micro-batches x 8 rows x 2 ranks = 192 rows; instance_lr updates all but the last step's
    changed = int((values0 != 0).sum())
    assert changed >= (128 if method == "instance_lr" else 150)
