"""RevBiFPN as a transformers model: golden sizes, reversible == storing training step, Auto round trips,
backbone, input validation."""

import copy
import subprocess
import sys

import pytest
import torch
from transformers import AutoBackbone, AutoConfig, AutoModel, AutoModelForImageClassification

from hf_eff import RevBiFPNBackbone, RevBiFPNConfig, RevBiFPNForImageClassification, RevBiFPNModel
from hf_eff.bench import SavedTensorsMeter


pytestmark = pytest.mark.usefixtures("single_thread")


GOLDEN_PARAMETERS = {  # official `thop` self-check, 1000 classes
    "s0": 3_419_196,
    "s1": 5_112_300,
    "s2": 10_576_528,
    "s3": 19_574_184,
    "s4": 48_687_336,
    "s5": 81_998_976,
    "s6": 142_307_972,
}


def tiny_config(**overrides) -> RevBiFPNConfig:
    """A small RevBiFPN (stem factor 2, total stride 16) with every stochastic layer switched on."""
    settings = {
        "stem_factor": 2,
        "channels": [12, 16, 24, 32],
        "neck_channels": [12, 16, 24, 40],
        "fc_features": 48,
        "num_extra_silos": 1,
        "num_labels": 5,
        "drop_path_rate": 0.2,
        "classifier_dropout": 0.2,
        "zero_init_last_norm": False,
    }
    return RevBiFPNConfig(**{**settings, **overrides})


@pytest.mark.parametrize("variant", list(GOLDEN_PARAMETERS))
def test_parameter_counts_match_the_official_variants(variant):
    with torch.device("meta"):
        model = RevBiFPNForImageClassification(RevBiFPNConfig.from_variant(variant))
    assert sum(p.numel() for p in model.parameters()) == GOLDEN_PARAMETERS[variant]


GOLDEN_MACS = {  # (resolution, MACs) from the same self-check, counted by thop
    "s0": (224, 308_039_716),
    "s1": (256, 616_781_508),
    "s2": (256, 1_370_329_000),
    "s3": (288, 3_330_873_312),
    "s4": (320, 10_632_222_080),
    "s5": (352, 21_848_995_912),
    "s6": (352, 38_084_434_748),
}


def thop_style_macs(model: torch.nn.Module, resolution: int) -> int:
    """Multiply-accumulates counted with thop's rules: convs (+1 per output for a bias), 2 per BatchNorm input
    element, linear layers, 11 per bilinear-upsampled output; activations, pooling and additions are free."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            per_output = module.in_channels // module.groups * module.weight[0, 0].numel() + (module.bias is not None)
            total += output.numel() * per_output
        elif isinstance(module, torch.nn.BatchNorm2d):
            total += 2 * inputs[0].numel()
        elif isinstance(module, torch.nn.Linear):
            total += module.in_features * output.numel()
        elif isinstance(module, torch.nn.Upsample):
            total += 11 * output.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(torch.empty(1, 3, resolution, resolution, device="meta"))
    for handle in handles:
        handle.remove()
    return total


@pytest.mark.parametrize(
    "variant", [v if v in ("s0", "s3") else pytest.param(v, marks=pytest.mark.slow) for v in GOLDEN_MACS]
)
def test_macs_match_the_official_variants(variant):
    resolution, macs = GOLDEN_MACS[variant]
    with torch.device("meta"):
        model = RevBiFPNForImageClassification(RevBiFPNConfig.from_variant(variant))
    assert thop_style_macs(model, resolution) == macs


def test_variant_presets():
    s3 = RevBiFPNConfig.from_variant("S3")
    assert s3.channels == [128, 160, 208, 416] and s3.neck_channels == [128, 160, 336, 848]
    assert (s3.fc_features, s3.num_extra_silos, s3.image_size, s3.drop_path_rate) == (3408, 3, 288, 0.05)
    assert s3.stem_channels == 8 and s3.total_stride == 32
    with pytest.raises(ValueError, match="variant must be one of"):
        RevBiFPNConfig.from_variant("s7")


def _training_step(model, pixel_values, labels, reversible):
    model = copy.deepcopy(model).train()
    model.set_reversible(reversible)
    x = pixel_values.clone().requires_grad_()
    torch.manual_seed(3)
    out = model(pixel_values=x, labels=labels)
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    return out.loss.detach(), x.grad, grads, buffers


@pytest.mark.parametrize("recompute_neck", [True, False])
def test_reversible_training_step_matches_storing_step(recompute_neck):
    torch.manual_seed(0)
    model = RevBiFPNForImageClassification(tiny_config(recompute_neck=recompute_neck))
    pixel_values, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 4])
    ref_loss, ref_dx, ref_grads, ref_buffers = _training_step(model, pixel_values, labels, False)
    loss, dx, grads, buffers = _training_step(model, pixel_values, labels, True)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=0)
    torch.testing.assert_close(dx, ref_dx, rtol=1e-4, atol=1e-6 + 1e-5 * ref_dx.abs().max().item())
    for name, ref in ref_grads.items():
        assert grads[name] is not None, name
        torch.testing.assert_close(grads[name], ref, rtol=1e-4, atol=1e-6 + 1e-5 * ref.abs().max().item())
    for name, ref in ref_buffers.items():  # BatchNorm statistics updated exactly once
        torch.testing.assert_close(buffers[name], ref, rtol=0, atol=0)


def test_saved_bytes_flat_in_depth_for_reversible_and_growing_when_storing():
    def saved(extra: int, reversible: bool) -> int:
        torch.manual_seed(0)
        model = RevBiFPNModel(tiny_config(num_extra_silos=extra, reversible=reversible)).train()
        with SavedTensorsMeter(exclude=list(model.parameters())) as meter:
            out = model(torch.randn(2, 3, 32, 32))
        del out
        return meter.bytes

    rev = [saved(n, True) for n in (0, 1, 3)]
    store = [saved(n, False) for n in (0, 1, 3)]
    assert rev[0] == rev[1] == rev[2]
    assert store[2] - store[1] == pytest.approx(2 * (store[1] - store[0]), rel=0.02)
    assert store[1] > 10 * rev[1]


def test_save_and_load_through_auto_classes(tmp_path):
    torch.manual_seed(0)
    model = RevBiFPNForImageClassification(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))
    assert "RevBiFPN" in (tmp_path / "README.md").read_text()
    assert isinstance(AutoConfig.from_pretrained(tmp_path), RevBiFPNConfig)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, RevBiFPNForImageClassification)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x).logits, loaded(x).logits)
    base = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(base, RevBiFPNModel)
    with torch.no_grad():
        assert torch.equal(base(x).last_hidden_state, model.revbifpn(x).last_hidden_state)


def test_backbone_returns_the_pyramid(tmp_path):
    torch.manual_seed(0)
    config = tiny_config()
    RevBiFPNForImageClassification(config).save_pretrained(tmp_path)
    backbone = RevBiFPNBackbone.from_pretrained(tmp_path, out_features=["stem", "p3", "p5"]).eval()
    maps = backbone(torch.randn(1, 3, 64, 64)).feature_maps
    assert [tuple(m.shape) for m in maps] == [(1, 12, 32, 32), (1, 16, 16, 16), (1, 40, 4, 4)]
    assert backbone.channels == [12, 16, 40]
    default = AutoBackbone.from_config(config).eval()  # pitfall 13: no AutoBackbone.from_pretrained(local dir)
    assert len(default(torch.randn(1, 3, 32, 32)).feature_maps) == 4


def test_bad_inputs_raise_clear_errors():
    model = RevBiFPNForImageClassification(tiny_config()).eval()
    with pytest.raises(ValueError, match=r"\(batch, 3, height, width\)"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="divisible by the total stride 16"):
        model(torch.randn(1, 3, 40, 32))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="labels must have shape"):
        model(torch.randn(2, 3, 32, 32), labels=torch.tensor([[1], [2]]))
    with pytest.raises(ValueError, match="expand_ratios must have one entry per stream"):
        RevBiFPNConfig(expand_ratios=[1, 2])
    with pytest.raises(ValueError, match="stem_factor"):
        RevBiFPNConfig(channels=[40, 64, 80, 160])


def test_grayscale_inputs_are_stacked_to_the_stem_width():
    model = RevBiFPNForImageClassification(tiny_config(num_channels=1)).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).logits.shape == (2, 5)


@pytest.mark.parametrize("autocast", [False, True])
def test_whole_body_inverts_within_budget(autocast):
    """Reconstruct the stem input from the body's outputs through every silo and block (fp32 streams; with bf16
    autocast only the transforms run in bf16, and they are recomputed identically, so the budget stays fp32)."""
    torch.manual_seed(0)
    model = RevBiFPNModel(tiny_config(num_extra_silos=3)).eval()
    x = model._stack_input(torch.randn(2, 3, 32, 32))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        streams = (x,)
        for op in model.encoder.ops:
            streams = op(*streams)
        assert all(s.dtype == torch.float32 for s in streams)
        for op in reversed(model.encoder.ops):
            streams = op.inverse(*streams)
    torch.testing.assert_close(streams[0], x, rtol=0, atol=1e-4)


def test_saved_folder_loads_as_remote_code_in_a_fresh_process(tmp_path):
    """The fresh interpreter never imports hf_eff itself: only the `auto_map` written on save leads there."""
    torch.manual_seed(0)
    model = RevBiFPNForImageClassification(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "modeling_revbifpn.py").exists()
    x = torch.randn(1, 3, 32, 32)
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        torch.save(model(x).logits, tmp_path / "expected.pt")
    script = (
        "import torch; from transformers import AutoModelForImageClassification as A; "
        f"m = A.from_pretrained({str(tmp_path)!r}, trust_remote_code=True).eval(); "
        f"x = torch.load({str(tmp_path / 'x.pt')!r}, weights_only=True); "
        f"e = torch.load({str(tmp_path / 'expected.pt')!r}, weights_only=True); "
        "assert torch.equal(m(x).logits, e), 'logits differ'"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_zero_init_applies_to_residual_transforms_but_never_to_new_streams():
    model = RevBiFPNModel(tiny_config(zero_init_last_norm=True))
    first_silo = model.encoder.ops[3]  # adds stream 1
    assert torch.count_nonzero(model.encoder.ops[1].streams[0].f.project_conv.norm.weight) == 0
    assert torch.count_nonzero(first_silo.up(1, 0)[0].project_conv.norm.weight) == 0
    assert torch.all(first_silo.down(0, 1).project_conv.norm.weight == 1)  # the created stream
    assert torch.all(model.encoder.ops[1].streams[0].f.depthwise_conv.norm.weight == 1)
