"""Reversible stacks under DistributedDataParallel (2 CPU processes, gloo): gradients are synchronised."""

import pytest
import torch
from torch import nn

from hf_eff.reversible import ParallelStreams, ReversibleSequence, RevNetBlock, RevSilo
from hf_eff.testing import run_distributed


def _mb(cin: int, cout: int, stride: int = 1) -> nn.Module:
    # GroupNorm, no dropout: the per-rank and full-batch computations are then exactly comparable
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(1, cout), nn.Hardswish())


class _Up(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(_mb(cin, cout), nn.Upsample(scale_factor=2, mode="bilinear"))


def build() -> ReversibleSequence:
    torch.manual_seed(0)
    return ReversibleSequence(
        [
            ParallelStreams([RevNetBlock(_mb(2, 2), _mb(2, 2))]),
            RevSilo(1, {(0, 1): _mb(4, 6, 2)}, {(1, 0): _Up(6, 4)}, add_stream=True),
            ParallelStreams([RevNetBlock(_mb(2, 2), _mb(2, 2)), RevNetBlock(_mb(3, 3), _mb(3, 3))]),
        ]
    )


def data() -> torch.Tensor:
    return torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(1))


def loss_of(model, x) -> torch.Tensor:
    return sum((y**2).mean() for y in model(x))


def _worker(find_unused: bool):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    rank = dist.get_rank()
    model = DistributedDataParallel(build(), find_unused_parameters=find_unused)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = data()[2 * rank : 2 * rank + 2]
    for _ in range(2):  # a second step fails if DDP's reduction did not finish in the first
        optimizer.zero_grad()
        loss_of(model, x).backward()
        grads = [p.grad.clone() for p in model.parameters()]
        optimizer.step()
    return grads, [p.detach().clone() for p in model.parameters()]


@pytest.mark.multiprocess
@pytest.mark.parametrize("find_unused", [False, True])
def test_ddp_synchronises_reversible_gradients(find_unused):
    (grads0, weights0), (grads1, weights1) = run_distributed(_worker, find_unused, world_size=2)
    for a, b in zip(weights0, weights1):
        assert torch.equal(a, b)
    # single process, full batch, same two SGD steps
    model = build()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        optimizer.zero_grad()
        loss_of(model, data()).backward()
        optimizer.step()
    for g_ddp, p in zip(grads0, model.parameters()):
        torch.testing.assert_close(g_ddp, p.grad, rtol=1e-4, atol=1e-6)
    for w_ddp, p in zip(weights0, model.parameters()):
        torch.testing.assert_close(w_ddp, p.detach(), rtol=1e-4, atol=1e-6)
