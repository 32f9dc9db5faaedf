"""hf_eff.distributed: no-ops in one process, real collectives over 2 gloo processes."""

import pytest
import torch

from hf_eff import distributed
from hf_eff.testing import run_distributed


def test_single_process_is_rank_0_of_1_and_collectives_leave_values_alone():
    assert (distributed.get_rank(), distributed.get_world_size(), distributed.is_distributed()) == (0, 1, False)
    tensor = torch.tensor([1.0, 2.0])
    assert distributed.all_reduce_(tensor, op="mean") is tensor and tensor.tolist() == [1.0, 2.0]
    assert distributed.broadcast_(tensor) is tensor and tensor.tolist() == [1.0, 2.0]
    assert distributed.broadcast_object({"a": 1}) == {"a": 1}
    distributed.check_same_on_all_ranks("anything", "value")


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: distributed.all_reduce_(torch.ones(2), op="max"), ValueError, "op must be one of"),
        (lambda: distributed.all_reduce_([1.0], op="sum"), TypeError, "torch.Tensor"),
        (lambda: distributed.all_reduce_(torch.ones(2, dtype=torch.long), op="mean"), TypeError, "floating"),
        (lambda: distributed.broadcast_(3.0), TypeError, "torch.Tensor"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def _collectives_worker():
    rank = distributed.get_rank()
    summed = distributed.all_reduce_(torch.tensor([1.0, float(rank)], dtype=torch.float64))
    averaged = distributed.all_reduce_(torch.tensor([2.0 * rank]), op="mean")
    non_contiguous = torch.arange(6.0).view(2, 3).t() * (rank + 1)
    distributed.all_reduce_(non_contiguous)
    mask = torch.tensor([rank == 0, rank == 1, True])
    distributed.broadcast_(mask)
    obj = distributed.broadcast_object({"from": rank})
    distributed.check_same_on_all_ranks({"arms": [0.1, 0.2], "seed": torch.tensor([3])}, "settings")
    try:
        distributed.check_same_on_all_ranks({"seed": rank}, "the bandit seed")
        message = None
    except ValueError as error:
        message = str(error)
    return {
        "rank": rank,
        "world_size": distributed.get_world_size(),
        "distributed": distributed.is_distributed(),
        "summed": summed.tolist(),
        "averaged": averaged.tolist(),
        "non_contiguous": non_contiguous.tolist(),
        "mask": mask.tolist(),
        "object": obj,
        "message": message,
    }


@pytest.mark.multiprocess
def test_two_processes_reduce_broadcast_and_name_what_differs():
    results = run_distributed(_collectives_worker, world_size=2)
    expected_non_contiguous = (torch.arange(6.0).view(2, 3).t() * 3).tolist()
    for rank, result in enumerate(results):
        assert (result["rank"], result["world_size"], result["distributed"]) == (rank, 2, True)
        assert result["summed"] == [2.0, 1.0]
        assert result["averaged"] == [1.0]
        assert result["non_contiguous"] == expected_non_contiguous
        assert result["mask"] == [True, False, True]  # rank 0's bool mask everywhere
        assert result["object"] == {"from": 0}
        assert "the bandit seed must be the same on every rank" in result["message"]
        assert "rank 1: {'seed': 1}" in result["message"]


def test_world_size_problem_compares_the_run_with_the_launcher_and_the_user(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.world_size_problem(1) is None
    assert "expected 2 processes; the launcher started 1 and the training loop joined 1" in (
        distributed.world_size_problem(1, expected=2)  # `accelerate launch --cpu --num_processes 2`: one process
    )
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.world_size_problem(2) is None and distributed.world_size_problem(2, expected=2) is None
    assert "the training loop joined 1" in distributed.world_size_problem(1)  # torchrun without use_cpu
    assert distributed.all_gather_object({"a": 1}) == [{"a": 1}]  # one process: its own value
