"""hf_eff.callbacks._utils: unwrapping accelerate's wrappers, snapshot/restore, probe-set losses (1 and 2 ranks)."""

import pytest
import torch
from accelerate import Accelerator
from accelerate.optimizer import AcceleratedOptimizer
from accelerate.scheduler import AcceleratedScheduler
from torch import nn

from hf_eff.callbacks._utils import (
    build_probe_batches,
    evaluate_probe_loss,
    example_losses,
    restore_training_state,
    snapshot_training_state,
    unwrap_optimizer,
    unwrap_scheduler,
)
from hf_eff.testing import run_distributed


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.Linear(8, 3))

    def forward(self, features, labels=None):
        logits = self.net(features)
        return {"loss": None if labels is None else nn.functional.cross_entropy(logits, labels), "logits": logits}


def probe_examples(n: int = 22) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(n, 6, generator=generator)
    return [{"features": f, "labels": torch.tensor(i % 3)} for i, f in enumerate(features)]


def expected_losses(model: nn.Module, examples) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        logits = model(torch.stack([e["features"] for e in examples]))["logits"]
    model.train()
    labels = torch.stack([e["labels"] for e in examples])
    return nn.functional.cross_entropy(logits, labels, reduction="none").double()


def test_unwrap_reaches_the_torch_optimizer_and_scheduler_behind_accelerate():
    optimizer = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    wrapped_optimizer, wrapped_scheduler = Accelerator(cpu=True).prepare(optimizer, scheduler)  # as Trainer does
    assert isinstance(wrapped_optimizer, AcceleratedOptimizer)
    assert isinstance(wrapped_scheduler, AcceleratedScheduler)
    assert unwrap_optimizer(wrapped_optimizer) is optimizer and unwrap_optimizer(optimizer) is optimizer
    assert unwrap_scheduler(wrapped_scheduler) is scheduler
    assert unwrap_scheduler(scheduler) is scheduler and unwrap_optimizer(None) is None


def test_restore_puts_back_weights_optimizer_state_and_schedule():
    model = Classifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))

    def step():
        batch = probe_examples(8)
        loss = model(torch.stack([e["features"] for e in batch]), torch.stack([e["labels"] for e in batch]))["loss"]
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()

    step()
    snapshot = snapshot_training_state(model, optimizer, scheduler)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    moments = {k: v.clone() for k, v in optimizer.state_dict()["state"][0].items()}
    lr, epoch = optimizer.param_groups[0]["lr"], scheduler.last_epoch
    step()
    step()
    assert not torch.equal(model.state_dict()["net.0.weight"], weights["net.0.weight"])
    restore_training_state(snapshot, model, optimizer, scheduler)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert all(torch.equal(v, moments[k]) for k, v in optimizer.state_dict()["state"][0].items())
    assert (optimizer.param_groups[0]["lr"], scheduler.last_epoch) == (lr, epoch)


def test_probe_loss_is_the_eval_mode_mean_with_per_example_losses_in_order():
    model, examples = Classifier(), probe_examples()
    batches = build_probe_batches(examples, model, batch_size=5)  # 5, 5, 5, 5, 2
    result = evaluate_probe_loss(model, batches, per_example=True)
    expected = expected_losses(model, examples)
    assert model.training  # eval mode only while measuring
    assert torch.allclose(result.per_example, expected, rtol=1e-6)
    assert result.mean == pytest.approx(expected.mean().item(), rel=1e-6)
    assert evaluate_probe_loss(model, batches).per_example is None


def test_per_example_token_losses_average_each_examples_counted_tokens():
    logits = torch.randn(2, 4, 5)
    labels = torch.tensor([[1, 2, -100, -100], [0, 4, 3, 2]])
    tokens = nn.functional.cross_entropy(logits.reshape(-1, 5), labels.clamp(min=0).reshape(-1), reduction="none")
    tokens = tokens.view(2, 4).double()
    assert torch.allclose(example_losses(logits, labels), torch.stack([tokens[0, :2].mean(), tokens[1].mean()]))
    shifted = example_losses(logits, labels, shift_labels=True)  # position t predicts the label at t + 1
    first = nn.functional.cross_entropy(logits[0, :1], labels[0, 1:2]).double()
    second = nn.functional.cross_entropy(logits[1, :3], labels[1, 1:]).double()
    assert torch.allclose(shifted, torch.stack([first, second]))
    with pytest.raises(ValueError, match="per-example losses are defined for"):
        example_losses(torch.randn(2, 3, 4, 5), torch.zeros(2, 3, 4, dtype=torch.long))


def test_a_causal_lm_is_shifted_by_default():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=11, n_positions=8, n_embd=8, n_layer=1, n_head=2))
    ids = torch.randint(0, 11, (3, 6))
    labels = ids.clone()
    labels[0, 4:] = -100
    result = evaluate_probe_loss(model, [{"input_ids": ids, "labels": labels}], per_example=True)
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert torch.allclose(result.per_example, example_losses(logits, labels, shift_labels=True), rtol=1e-5)


def _probe_worker():
    import torch.distributed as dist

    model, examples = Classifier(), probe_examples()
    result = evaluate_probe_loss(model, build_probe_batches(examples, model, batch_size=5), per_example=True)
    return {"rank": dist.get_rank(), "mean": result.mean, "per_example": result.per_example}


@pytest.mark.multiprocess
def test_two_ranks_share_the_work_and_agree_on_every_loss():
    rank0, rank1 = run_distributed(_probe_worker, world_size=2)
    expected = expected_losses(Classifier(), probe_examples())
    for result in (rank0, rank1):
        assert torch.allclose(result["per_example"], expected, rtol=1e-6)
        assert result["mean"] == pytest.approx(expected.mean().item(), rel=1e-6)
    assert torch.equal(rank0["per_example"], rank1["per_example"]) and rank0["mean"] == rank1["mean"]
