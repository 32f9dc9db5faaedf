import math

import pytest
import torch
from spdf_testing import VOCAB, tiny_gpt2

from hf_eff.sparsity import SparsityConfig, StaticMaskManager
from hf_eff.sparsity.masks import draw_masks, kept_count, layer_densities


def test_masks_do_not_depend_on_global_rng_and_follow_the_seed():
    shapes = {"a.weight": torch.Size([7, 13]), "b.weight": torch.Size([32, 8])}
    torch.manual_seed(1)
    first = draw_masks(shapes, SparsityConfig(0.6, seed=5))
    torch.manual_seed(2)
    again = draw_masks(shapes, SparsityConfig(0.6, seed=5))
    other = draw_masks(shapes, SparsityConfig(0.6, seed=6))
    assert all(torch.equal(first[n], again[n]) for n in shapes)
    assert not all(torch.equal(first[n], other[n]) for n in shapes)
    # drawing must not consume the global RNG either
    torch.manual_seed(3)
    expected = torch.rand(1)
    torch.manual_seed(3)
    draw_masks(shapes, SparsityConfig(0.6))
    assert torch.equal(torch.rand(1), expected)


@pytest.mark.parametrize("numel,sparsity,kept", [(10, 0.7, 3), (1000, 0.75, 250), (7, 0.5, 4), (5, 0.0, 5)])
def test_kept_count_is_ceil_of_density(numel, sparsity, kept):
    assert kept_count(numel, 1 - sparsity) == kept


def test_erk_keeps_the_total_budget_and_makes_big_matrices_sparser():
    shapes = {"small": torch.Size([16, 16]), "wide": torch.Size([64, 256]), "tiny": torch.Size([4, 2])}
    densities = layer_densities(shapes, 0.8, "erk")
    kept = sum(densities[n] * math.prod(s) for n, s in shapes.items())
    assert kept == pytest.approx(0.2 * sum(math.prod(s) for s in shapes.values()))
    assert densities["wide"] < densities["small"] <= 1.0
    assert densities["tiny"] == 1.0  # would exceed 1, kept dense and the rest rescaled
    masks = draw_masks(shapes, SparsityConfig(0.8, distribution="erk"))
    assert abs(sum(int(m.sum()) for m in masks.values()) - kept) <= len(shapes)


def _train(manager, model, optimizer, steps=25, clip=1.0, poison_dead_grads=False):
    batch = torch.randint(0, VOCAB, (4, 16), generator=torch.Generator().manual_seed(0))
    for _ in range(steps):
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        if poison_dead_grads:  # NaN reaching dead positions after the hooks ran must not leak into weights
            for name, p in manager.params.items():
                assert torch.count_nonzero(p.grad[~manager.masks[name]]) == 0
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad()


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda params: torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1),
        lambda params: torch.optim.Adam(params, lr=1e-2, weight_decay=0.1),  # L2 decay inside the gradient
        lambda params: torch.optim.SGD(params, lr=1e-1, momentum=0.9, weight_decay=0.1),
        lambda params: torch.optim.Adam(params, lr=1e-2, amsgrad=True),
    ],
    ids=["adamw", "adam-l2", "sgd-momentum", "adam-amsgrad"],
)
def test_masked_weights_and_optimizer_state_stay_exactly_zero(make_optimizer):
    model = tiny_gpt2()
    manager = StaticMaskManager.from_model(model, SparsityConfig(0.75))
    optimizer = make_optimizer(model.parameters())
    manager.attach_optimizer(optimizer)
    before = {n: p.detach().clone() for n, p in manager.params.items()}
    _train(manager, model, optimizer, poison_dead_grads=True)
    assert manager.leaked() == 0
    assert manager.held_sparsity() == pytest.approx(0.75, abs=1e-9)
    for name, param in manager.params.items():
        dead = ~manager.masks[name]
        assert torch.count_nonzero(param[dead]) == 0
        assert not torch.equal(param[~dead], before[name][~dead])  # the live weights did train
        states = [v for v in optimizer.state[param].values() if torch.is_tensor(v) and v.shape == param.shape]
        assert states, "optimizer keeps per-element state for this parameter"
        assert all(torch.count_nonzero(s[dead]) == 0 for s in states)


def test_without_the_manager_the_same_training_breaks_sparsity():
    """Control: shows the test above would fail if masking were missing (Adam L2 decay revives zeros)."""
    model = tiny_gpt2()
    manager = StaticMaskManager.from_model(model, SparsityConfig(0.75))
    manager.remove()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=0.1)
    _train(manager, model, optimizer, steps=2)
    assert manager.leaked() > 0


def test_nan_in_dead_gradient_positions_is_replaced_not_propagated():
    model = tiny_gpt2()
    manager = StaticMaskManager.from_model(model, SparsityConfig(0.5))
    name, param = next(iter(manager.params.items()))
    upstream = torch.full_like(param, float("nan"))
    upstream[manager.masks[name]] = 1.0
    (param * upstream).sum().backward()
    assert torch.count_nonzero(param.grad[~manager.masks[name]]) == 0
    assert not torch.isnan(param.grad).any()


def test_gradients_are_masked_before_clipping():
    model = tiny_gpt2()
    manager = StaticMaskManager.from_model(model, SparsityConfig(0.9))
    batch = torch.randint(0, VOCAB, (2, 16))
    model(input_ids=batch, labels=batch).loss.backward()
    for name, param in manager.params.items():
        assert torch.count_nonzero(param.grad[~manager.masks[name]]) == 0


def test_load_state_dict_replaces_masks_in_place_and_validates():
    model = tiny_gpt2()
    manager = StaticMaskManager.from_model(model, SparsityConfig(0.5, seed=0))
    other = StaticMaskManager.from_model(tiny_gpt2(seed=1), SparsityConfig(0.5, seed=9)).state_dict()
    manager.load_state_dict(other)
    assert all(torch.equal(manager.masks[n], other[n]) for n in other)
    name = next(iter(other))
    # the gradient hook follows the new mask
    param = manager.params[name]
    param.grad = None
    (param * torch.ones_like(param)).sum().backward()
    assert torch.equal(param.grad != 0, other[name])
    with pytest.raises(ValueError, match="missing"):
        manager.load_state_dict({name: other[name]})
    with pytest.raises(ValueError, match="shape"):
        manager.load_state_dict({**other, name: other[name].T})


def test_remove_detaches_every_hook():
    model = tiny_gpt2()
    manager = StaticMaskManager.from_model(model, SparsityConfig(0.75))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    manager.attach_optimizer(optimizer)
    manager.remove()
    _train(manager, model, optimizer, steps=1)
    assert manager.leaked() > 0
