import pytest
import torch

from hf_eff.testing import DistributedWorkerError, run_distributed


def _all_reduce_rank_tensor(scale: float):
    import torch.distributed as dist

    rank = dist.get_rank()
    tensor = torch.arange(4, dtype=torch.float64) * (rank + 1) * scale
    dist.all_reduce(tensor)
    return rank, dist.get_world_size(), tensor


@pytest.mark.multiprocess
def test_all_reduce_over_two_processes_is_correct():
    results = run_distributed(_all_reduce_rank_tensor, 0.5, world_size=2)
    expected = torch.arange(4, dtype=torch.float64) * 0.5 * (1 + 2)
    assert [r[0] for r in results] == [0, 1]
    assert all(r[1] == 2 for r in results)
    for _, _, tensor in results:
        torch.testing.assert_close(tensor, expected, rtol=0, atol=0)


def _fail_on_rank_one():
    import torch.distributed as dist

    if dist.get_rank() == 1:
        raise AssertionError("rank one disagrees")
    return "fine"


@pytest.mark.multiprocess
def test_worker_failure_is_raised_with_rank_and_traceback():
    with pytest.raises(DistributedWorkerError, match=r"rank 1:(.|\n)*rank one disagrees"):
        run_distributed(_fail_on_rank_one)


def _trainer_ddp_step():
    from datasets import Dataset
    from torch import nn
    from transformers import Trainer, TrainingArguments

    class Regressor(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 1)

        def forward(self, x, labels=None):
            prediction = self.linear(x).squeeze(-1)
            return {"loss": ((prediction - labels) ** 2).mean(), "logits": prediction}

    torch.manual_seed(0)
    data = Dataset.from_dict({"x": torch.randn(16, 4).tolist(), "labels": torch.randn(16).tolist()})
    args = TrainingArguments(
        "unused", use_cpu=True, max_steps=2, per_device_train_batch_size=4, report_to="none",
        disable_tqdm=True, save_strategy="no",
    )  # fmt: skip
    trainer = Trainer(model=Regressor(), args=args, train_dataset=data)
    trainer.train()
    return (
        trainer.accelerator.num_processes,
        type(trainer.model_wrapped).__name__,
        trainer.model.linear.weight.detach(),
    )


@pytest.mark.multiprocess
def test_trainer_inside_helper_runs_ddp_and_keeps_ranks_in_sync(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (n0, wrapper0, w0), (n1, wrapper1, w1) = run_distributed(_trainer_ddp_step)
    assert n0 == n1 == 2
    assert wrapper0 == wrapper1 == "DistributedDataParallel"
    assert torch.equal(w0, w1)


def test_invalid_world_size():
    with pytest.raises(ValueError, match="world_size"):
        run_distributed(_fail_on_rank_one, world_size=0)
