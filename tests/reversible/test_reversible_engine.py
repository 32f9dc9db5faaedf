"""The reversible engine: gradients equal the activation-storing run, inversion is exact, BN stats are updated
once, memory stays flat in depth, and DDP sees the gradients."""

import copy

import pytest
import torch
from torch import nn

from hf_eff.bench import SavedTensorsMeter
from hf_eff.reversible import (
    InvertibleModule,
    ParallelStreams,
    ReversibleSequence,
    RevNetBlock,
    RevSilo,
    SpaceToDepth,
    is_recomputing,
    recompute,
)


pytestmark = pytest.mark.usefixtures("single_thread")


def conv_block(cin: int, cout: int, stride: int = 1, dims: int = 2, dropout: float = 0.2) -> nn.Module:
    conv = nn.Conv2d if dims == 2 else nn.Conv3d
    norm = nn.BatchNorm2d(cout) if dims == 2 else nn.GroupNorm(1, cout)
    return nn.Sequential(conv(cin, cout, 3, stride, 1, bias=False), norm, nn.Dropout(dropout), nn.Hardswish())


class Upsampled(nn.Module):
    def __init__(self, cin: int, cout: int, factor: int):
        super().__init__()
        self.conv, self.factor = conv_block(cin, cout), factor

    def forward(self, x):
        return nn.functional.interpolate(self.conv(x), scale_factor=self.factor, mode="bilinear")


WIDTHS = (4, 6, 8)


def make_silo(num_inputs: int, add_stream: bool) -> RevSilo:
    m = num_inputs + int(add_stream)
    down = {(i, j): conv_block(WIDTHS[i], WIDTHS[j], 2 ** (j - i)) for i in range(num_inputs) for j in range(i + 1, m)}
    up = {(i, j): Upsampled(WIDTHS[i], WIDTHS[j], 2 ** (i - j)) for i in range(m) for j in range(i)}
    return RevSilo(num_inputs, down, up, add_stream=add_stream)


def make_streams(n: int, batch: int = 2, size: int = 16) -> tuple[torch.Tensor, ...]:
    return tuple(torch.randn(batch, WIDTHS[k], size >> k, size >> k) for k in range(n))


def train_step(sequence: ReversibleSequence, inputs, reversible: bool, seed: int = 1):
    """One forward/backward; returns (outputs, input grads, {param name: grad}, buffers)."""
    model = copy.deepcopy(sequence).train()
    model.reversible = reversible
    leaves = [x.clone().requires_grad_() for x in inputs]
    torch.manual_seed(seed)
    outputs = model(*leaves)
    loss = sum((y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum() + (y**2).mean() for y in outputs)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    return [y.detach() for y in outputs], [x.grad for x in leaves], grads, buffers


def assert_grads_close(expected: torch.Tensor, actual: torch.Tensor, rtol: float = 1e-4) -> None:
    # conv biases in front of a norm have an exact gradient of 0, i.e. pure rounding noise: compare against the
    # tensor's own scale there
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=1e-6 + rtol * 0.1 * expected.abs().max().item())


def assert_same_training_step(sequence: ReversibleSequence, inputs, rtol: float = 1e-4) -> None:
    ref_out, ref_dx, ref_grads, ref_buffers = train_step(sequence, inputs, reversible=False)
    out, dx, grads, buffers = train_step(sequence, inputs, reversible=True)
    for a, b in zip(ref_out, out):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    for a, b in zip(ref_dx, dx):
        assert_grads_close(a, b, rtol)
    assert ref_grads.keys() == grads.keys()
    for name in ref_grads:
        assert grads[name] is not None, f"{name} got no gradient"
        assert_grads_close(ref_grads[name], grads[name], rtol)
    for name in ref_buffers:
        torch.testing.assert_close(buffers[name], ref_buffers[name], rtol=0, atol=0)


def test_revnet_block_gradients_match_storing_run_with_dropout():
    torch.manual_seed(0)
    sequence = ReversibleSequence(
        [RevNetBlock(conv_block(3, 2), conv_block(2, 3)), RevNetBlock(conv_block(3, 2), conv_block(2, 3))]
    )
    assert_same_training_step(sequence, (torch.randn(2, 5, 8, 8),))  # odd width: ceil/floor halves


@pytest.mark.parametrize("add_stream", [False, True])
def test_revsilo_gradients_match_storing_run(add_stream):
    torch.manual_seed(0)
    n = 2 if add_stream else 3
    assert_same_training_step(ReversibleSequence([make_silo(n, add_stream)]), make_streams(n))


def test_stack_of_blocks_and_silos_matches_storing_run():
    torch.manual_seed(0)
    ops = [
        SpaceToDepth(2),
        ParallelStreams([RevNetBlock(conv_block(2, 2), conv_block(2, 2))]),
        make_silo(1, True),
        ParallelStreams([None, RevNetBlock(conv_block(3, 3), conv_block(3, 3))]),
        make_silo(2, True),
        make_silo(3, False),
    ]
    assert_same_training_step(ReversibleSequence(ops), (torch.randn(2, 1, 32, 32),))


def test_3d_blocks_with_group_norm_match_storing_run():
    """The engine is dimension-agnostic (the reversible 3D U-Net builds on it)."""
    torch.manual_seed(0)
    block = RevNetBlock(conv_block(4, 4, dims=3), conv_block(4, 4, dims=3))
    assert_same_training_step(
        ReversibleSequence([SpaceToDepth(2), ParallelStreams([block])]), (torch.randn(2, 1, 8, 8, 8),)
    )


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_space_to_depth_inverts_and_matches_pixel_unshuffle_layout(dims):
    x = torch.randn(2, 3, *([8] * dims))
    op = SpaceToDepth(2)
    (y,) = op(x)
    assert y.shape == (2, 3 * 2**dims, *([4] * dims))
    assert torch.equal(op.inverse(y)[0], x)
    if dims == 2:  # official layout: channel index = (row offset, column offset, input channel)
        assert torch.equal(y[:, 3 * (1 * 2 + 0) + 2], x[:, 2, 1::2, 0::2])


def test_inverse_reconstructs_inputs_to_fp32_rounding():
    torch.manual_seed(0)
    for op, inputs in [
        (RevNetBlock(conv_block(3, 3), conv_block(3, 3)), (torch.randn(2, 6, 8, 8),)),
        (make_silo(3, False), make_streams(3)),
        (make_silo(2, True), make_streams(2)),
    ]:
        op.eval()  # no dropout; BN with running stats: a deterministic map
        with torch.no_grad():
            outputs = op(*inputs)
        assert len(outputs) == op.num_outputs if not isinstance(op, RevNetBlock) else 1
        for x, x_rec in zip(inputs, op.inverse(*outputs)):
            torch.testing.assert_close(x_rec, x, rtol=0, atol=1e-5 * max(1.0, x.abs().max().item()))


def test_batchnorm_running_stats_updated_once():
    torch.manual_seed(0)
    sequence = ReversibleSequence([make_silo(2, True), make_silo(3, False)])
    inputs = make_streams(2)
    _, _, _, stored = train_step(sequence, inputs, reversible=False)
    _, _, _, reversible = train_step(sequence, inputs, reversible=True)
    tracked = [name for name in stored if name.endswith("num_batches_tracked")]
    assert tracked and all(int(reversible[name]) == 1 for name in tracked)
    for name in stored:
        torch.testing.assert_close(reversible[name], stored[name], rtol=0, atol=0)


def test_bytes_saved_for_backward_are_flat_in_depth_when_reversible():
    torch.manual_seed(0)

    def saved_bytes(num_silos: int, reversible: bool) -> int:
        sequence = ReversibleSequence([make_silo(3, False) for _ in range(num_silos)], reversible=reversible).train()
        inputs = make_streams(3)
        with SavedTensorsMeter(exclude=list(sequence.parameters())) as meter:
            outputs = sequence(*inputs)
        del outputs
        return meter.bytes

    rev = [saved_bytes(n, True) for n in (1, 2, 4)]
    store = [saved_bytes(n, False) for n in (1, 2, 4)]
    assert rev[0] == rev[1] == rev[2]
    assert rev[0] == sum(x.numel() * 4 for x in make_streams(3))  # exactly the final outputs
    assert store[1] - store[0] == pytest.approx(store[0], rel=0.05)  # linear growth
    assert store[2] - store[1] == pytest.approx(2 * store[0], rel=0.05)


def test_bf16_autocast_keeps_fp32_streams_and_matching_gradients():
    torch.manual_seed(0)
    sequence = ReversibleSequence([make_silo(2, True), make_silo(3, False)])
    inputs = tuple(x.bfloat16() for x in make_streams(2))

    def step(reversible: bool):
        model = copy.deepcopy(sequence).train()
        model.reversible = reversible
        leaves = [x.clone().requires_grad_() for x in inputs]
        torch.manual_seed(1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs = model(*leaves)
            loss = sum((y.float() ** 2).mean() for y in outputs)
        loss.backward()
        return outputs, [p.grad for p in model.parameters()]

    ref_out, ref_grads = step(False)
    out, grads = step(True)
    assert all(y.dtype == torch.float32 for y in out)  # streams stay fp32 under autocast
    for a, b in zip(ref_out, out):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    # stated tolerance under bf16 autocast: 2 % of each gradient tensor's scale
    for a, b in zip(ref_grads, grads):
        torch.testing.assert_close(b, a, rtol=2e-2, atol=2e-2 * a.abs().max().item())


class AffineCoupling(InvertibleModule):
    """A non-additive coupling using only the generic (inverse, then recompute) backward path."""

    def __init__(self):
        super().__init__()
        self.scale, self.shift = conv_block(2, 2, dropout=0.3), conv_block(2, 2, dropout=0.3)

    def invertible_forward(self, run, streams):
        (x,) = streams
        a, b = x.chunk(2, dim=1)
        return (torch.cat([a, b * torch.exp(torch.tanh(run("s", self.scale, a))) + run("t", self.shift, a)], 1),)

    def invertible_inverse(self, run, outputs):
        (y,) = outputs
        a, yb = y.chunk(2, dim=1)
        return (torch.cat([a, (yb - run("t", self.shift, a)) * torch.exp(-torch.tanh(run("s", self.scale, a)))], 1),)


def test_generic_invertible_module_path():
    torch.manual_seed(0)
    assert_same_training_step(ReversibleSequence([AffineCoupling(), AffineCoupling()]), (torch.randn(2, 4, 8, 8),))


def test_parameter_gradients_are_returned_not_written():
    """torch.autograd.grad only sees gradients that flow through the graph (what DDP's reducer relies on)."""
    torch.manual_seed(0)
    sequence = ReversibleSequence([make_silo(2, True)]).train()
    params = list(sequence.parameters())
    loss = sum(y.sum() for y in sequence(*make_streams(2)))  # inputs do not require grad
    grads = torch.autograd.grad(loss, params)
    assert all(g is not None and g.abs().sum() > 0 for g in grads[:3])
    assert all(p.grad is None for p in params)


def test_recompute_is_flagged_for_custom_stateful_layers():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(is_recomputing())
            return x * 2

    sequence = ReversibleSequence([RevNetBlock(Probe(), conv_block(1, 1))])
    (y,) = sequence(torch.randn(1, 2, 4, 4, requires_grad=True))
    y.sum().backward()
    assert seen == [False, True] and not is_recomputing()


def test_inference_without_grad_stores_nothing_and_matches():
    torch.manual_seed(0)
    sequence = ReversibleSequence([make_silo(2, True)]).eval()
    inputs = make_streams(2)
    with torch.no_grad():
        plain = sequence(*inputs)
    sequence.reversible = False
    with torch.no_grad():
        stored = sequence(*inputs)
    for a, b in zip(plain, stored):
        assert torch.equal(a, b)


def test_bad_construction_is_rejected():
    with pytest.raises(TypeError, match="InvertibleModule"):
        ReversibleSequence([nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="down transform"):
        RevSilo(2, {(1, 0): nn.Identity()}, {})
    with pytest.raises(ValueError, match="needs at least one"):
        RevSilo(2, {}, {}, add_stream=True)
    with pytest.raises(ValueError, match="expects 2 streams"):
        make_silo(2, False)(*make_streams(3))
    with pytest.raises(ValueError, match="divisible"):
        SpaceToDepth(2)(torch.randn(1, 1, 5, 4))


def test_parameter_gradients_reach_p_grad_as_each_op_finishes():
    """The engine holds one op's parameter gradients at a time: when the first op is recomputed in backward,
    the later ops' gradients are already in ``p.grad`` (where DDP's hooks and the optimizer read them)."""
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            if is_recomputing():
                seen.append([p.grad is not None for p in later.parameters()])
            return x * 2

    torch.manual_seed(0)
    later = ReversibleSequence([RevNetBlock(conv_block(1, 1), conv_block(1, 1)) for _ in range(2)])
    sequence = ReversibleSequence([RevNetBlock(Probe(), conv_block(1, 1)), *later.ops])
    (y,) = sequence(torch.randn(2, 2, 4, 4))
    y.square().sum().backward()
    assert seen == [[True] * len(list(later.parameters()))]


def test_gradients_accumulate_into_existing_grads_and_over_retained_graphs():
    torch.manual_seed(0)
    sequence = ReversibleSequence([make_silo(2, True), make_silo(3, False)])
    inputs = make_streams(2)
    _, _, reference, _ = train_step(sequence, inputs, reversible=False)
    model = copy.deepcopy(sequence).train()
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    torch.manual_seed(1)
    outputs = model(*inputs)
    loss = sum((y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum() + (y**2).mean() for y in outputs)
    loss.backward(retain_graph=True)
    loss.backward()  # the saved outputs survive a retained graph; the recompute runs again
    for name, p in model.named_parameters():
        assert_grads_close(1 + 2 * reference[name], p.grad)


class DropoutNormBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = conv_block(channels, channels, dropout=0.3)

    def forward(self, x, scale):
        return self.body(x) * scale


def test_recompute_matches_the_plain_call_with_dropout_and_updates_batchnorm_once():
    torch.manual_seed(0)
    block = DropoutNormBlock(3).train()
    x = torch.randn(2, 3, 8, 8)

    def step(use_recompute: bool):
        model = copy.deepcopy(block)
        leaf = x.clone().requires_grad_()
        torch.manual_seed(1)
        if use_recompute:
            y = recompute(model, leaf, 0.5, modules=[model])
        else:
            y = model(leaf, 0.5)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        return y.detach(), leaf.grad, {n: p.grad for n, p in model.named_parameters()}, model.state_dict()

    ref_y, ref_dx, ref_grads, ref_state = step(False)
    y, dx, grads, state = step(True)
    torch.testing.assert_close(y, ref_y, rtol=0, atol=0)
    assert_grads_close(ref_dx, dx)
    for name in ref_grads:
        assert_grads_close(ref_grads[name], grads[name])
    for name in ref_state:  # running statistics and num_batches_tracked: one update, as without recompute
        torch.testing.assert_close(state[name], ref_state[name], rtol=0, atol=0)


def test_recompute_saves_only_its_tensor_arguments():
    torch.manual_seed(0)
    block = DropoutNormBlock(3).train()
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with SavedTensorsMeter(exclude=list(block.parameters())) as meter:
        y = recompute(block, x, 0.5, modules=[block])
    meter.count_graph_held([y])
    assert meter.bytes == x.numel() * 4


def test_recompute_refuses_parameters_of_unlisted_modules_and_bad_arguments():
    torch.manual_seed(0)
    block, other = conv_block(2, 2), conv_block(2, 2)
    y = recompute(lambda t: other(block(t)), torch.randn(1, 2, 4, 4), modules=[block])
    with pytest.raises(RuntimeError, match="not listed in `modules`"):
        y.sum().backward()
    with pytest.raises(TypeError, match="nn.Module"):
        recompute(block, torch.randn(1, 2, 4, 4), modules=[lambda t: t])
    with pytest.raises(ValueError, match="tensor argument"):
        recompute(lambda: torch.ones(1), modules=[])
    with torch.no_grad():  # nothing to recompute: a plain call
        assert torch.equal(recompute(torch.neg, torch.ones(2), modules=[]), -torch.ones(2))
