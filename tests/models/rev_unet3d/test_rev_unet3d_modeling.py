"""The reversible 3D U-Net: gradients equal to storing mode, exact inversion, level-only memory growth, errors."""

import pytest
import torch
from rev_unet3d_helpers import tiny_config, tiny_model

from hf_eff import RevUNet3DConfig, RevUNet3DForSemanticSegmentation, RevUNet3DModel
from hf_eff.bench import SavedTensorsMeter
from hf_eff.reversible.replay import PLAIN


def _grads(model, pixel_values, labels, reversible: bool, autocast: bool = False):
    model.set_reversible(reversible)
    model.zero_grad(set_to_none=True)
    x = pixel_values.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = model(pixel_values=x, labels=labels).loss
    loss.backward()
    return loss.detach(), x.grad, {n: p.grad.clone() for n, p in model.named_parameters()}


def test_reversible_gradients_equal_storing_gradients(brats_batch):
    pixel_values, labels = brats_batch
    model = tiny_model(se_ratio=0.25, encoder_depths=(2, 1, 2))
    loss_r, dx_r, grads_r = _grads(model, pixel_values, labels, reversible=True)
    loss_s, dx_s, grads_s = _grads(model, pixel_values, labels, reversible=False)
    torch.testing.assert_close(loss_r, loss_s, rtol=1e-5, atol=0)
    torch.testing.assert_close(dx_r, dx_s, rtol=1e-4, atol=1e-6)
    assert grads_r.keys() == grads_s.keys()
    for name in grads_s:
        scale = grads_s[name].abs().max().item()
        torch.testing.assert_close(grads_r[name], grads_s[name], rtol=1e-4, atol=1e-6 * max(1.0, scale), msg=name)


def test_bf16_autocast_gradients_stay_close_to_storing(brats_batch):
    pixel_values, labels = brats_batch
    model = tiny_model()
    _, _, grads_r = _grads(model, pixel_values, labels, reversible=True, autocast=True)
    _, _, grads_s = _grads(model, pixel_values, labels, reversible=False, autocast=True)
    _, _, grads_fp32 = _grads(model, pixel_values, labels, reversible=False)
    flat = lambda g: torch.cat([v.flatten().float() for v in g.values()])  # noqa: E731
    error_rev = (flat(grads_r) - flat(grads_s)).norm() / flat(grads_s).norm()
    error_bf16 = (flat(grads_s) - flat(grads_fp32)).norm() / flat(grads_fp32).norm()
    assert error_rev < 0.05, f"reversible vs storing under bf16 autocast: relative error {error_rev:.3g}"
    assert error_bf16 < 0.1, f"bf16 vs fp32 storing: relative error {error_bf16:.3g}"


@pytest.mark.parametrize("autocast", [False, True])
def test_every_level_inverts_to_rounding(autocast):
    torch.manual_seed(0)
    model = tiny_model(encoder_depths=(3, 3, 3)).eval()
    for stage in model.rev_unet3d.encoder:
        width = stage.ops[0].f.expand_conv.conv.in_channels + stage.ops[0].g.expand_conv.conv.in_channels
        x = torch.randn(1, width, 8, 8, 8)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            (y,) = stage(x.float())
            streams = (y.float(),)
            for op in reversed(stage.ops):
                streams = op.invertible_inverse(PLAIN, streams)
        error = (streams[0] - x).abs().max().item()
        assert error < (5e-2 if autocast else 1e-5), f"width {width}: reconstruction error {error:.3g}"


def _saved_bytes(model, pixel_values, labels) -> int:
    with SavedTensorsMeter(exclude=list(model.parameters())) as meter:
        loss = model(pixel_values=pixel_values, labels=labels).loss
    del loss
    return meter.bytes


def test_saved_bytes_grow_with_levels_not_with_blocks(brats_batch):
    pixel_values, labels = brats_batch
    measured = {}
    for levels, blocks in ((2, 1), (2, 3), (3, 1), (3, 3)):
        depths = {
            "channels": (8, 16, 32)[:levels],
            "encoder_depths": (blocks,) * levels,
            "decoder_depths": (blocks,) * (levels - 1),
        }
        model = tiny_model(**depths)
        for reversible in (True, False):
            model.set_reversible(reversible)
            measured[levels, blocks, reversible] = _saved_bytes(model, pixel_values, labels)
    for levels in (2, 3):  # reversible: blocks per level cost nothing; storing: every block adds activations
        assert measured[levels, 3, True] == measured[levels, 1, True], measured
        assert measured[levels, 3, False] > 1.5 * measured[levels, 1, False], measured
        assert measured[levels, 3, False] > 2 * measured[levels, 3, True], measured
    assert measured[3, 1, True] > measured[2, 1, True], measured  # a level adds its boundary tensors


def test_overfits_a_tiny_synthetic_batch(brats_batch):
    pixel_values, labels = brats_batch
    model = tiny_model(cross_entropy_weight=1.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        optimizer.zero_grad()
        model(pixel_values=pixel_values, labels=labels).loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = torch.sigmoid(model(pixel_values=pixel_values).logits) > 0.5
    from hf_eff.models.rev_unet3d import label_map_to_regions

    truth = label_map_to_regions(labels, model.config.region_labels).bool()
    dims = (0, 2, 3, 4)
    dice = 2 * (predicted & truth).sum(dims) / (predicted.sum(dims) + truth.sum(dims))
    assert dice.min() > 0.9, f"Dice per region (WT, TC, ET) after 40 steps: {dice.tolist()}"


def test_classes_mode_softmax_loss_and_label_values():
    model = tiny_model(label_mode="classes", label_values=(0, 1, 2), in_channels=1, cross_entropy_weight=1.0)
    assert model.config.num_labels == 3 and model.config.id2label == {0: "0", 1: "1", 2: "2"}
    x = torch.randn(1, 1, 16, 16, 16)
    labels = torch.randint(0, 3, (1, 16, 16, 16))
    out = model(pixel_values=x, labels=labels)
    assert out.logits.shape == (1, 3, 16, 16, 16) and out.loss.requires_grad
    predicted = model.predict_volume(x[0], output="labels")
    assert set(predicted.unique().tolist()) <= {0, 1, 2}


def test_scaling_knobs_change_depth_and_width():
    base = tiny_config(encoder_depths=(2, 2, 2), decoder_depths=(2, 2))
    deeper = tiny_config(encoder_depths=(2, 2, 2), decoder_depths=(2, 2), depth_multiplier=1.25)
    wider = tiny_config(encoder_depths=(2, 2, 2), decoder_depths=(2, 2), width_multiplier=2.0)
    assert deeper.encoder_blocks == [3, 3, 3] and deeper.decoder_blocks == [3, 3]
    assert wider.level_channels == [16, 32, 64] and base.level_channels == [8, 16, 32]
    model = RevUNet3DModel(wider)
    assert len(model.encoder[0].ops) == 2 and model.stem.conv.out_channels == 16


def test_odd_channel_counts_work_with_instance_norm(brats_batch):
    pixel_values, labels = brats_batch
    model = tiny_model(channels=(7, 13, 21), norm="instance", skip_mode="concat", upsample_mode="trilinear")
    _, _, grads_r = _grads(model, pixel_values, labels, reversible=True)
    _, _, grads_s = _grads(model, pixel_values, labels, reversible=False)
    for name in grads_s:
        torch.testing.assert_close(grads_r[name], grads_s[name], rtol=1e-4, atol=1e-5, msg=name)


def test_clear_errors_for_bad_configs():
    with pytest.raises(ValueError, match="norm_groups=4 must divide"):
        RevUNet3DConfig(channels=(12, 24), encoder_depths=(1, 1), decoder_depths=(1,), crop_size=(16, 16, 16))
    with pytest.raises(ValueError, match="decoder_depths"):
        RevUNet3DConfig(channels=(8, 16), encoder_depths=(1, 1), decoder_depths=(1, 1))
    with pytest.raises(ValueError, match="crop_size"):
        RevUNet3DConfig(crop_size=(100, 128, 128))
    with pytest.raises(ValueError, match="num_labels=2"):
        RevUNet3DConfig(num_labels=2)
    with pytest.raises(ValueError, match="id2label has 2 entries"):
        RevUNet3DConfig(id2label={0: "a", 1: "b"})
    named = tiny_config(label_mode="classes", label_values=(0, 1, 2), id2label={0: "bg", 1: "GM", 2: "WM"})
    assert named.id2label == {0: "bg", 1: "GM", 2: "WM"} and named.num_labels == 3
    with pytest.raises(ValueError, match="hidden_act"):
        RevUNet3DConfig(hidden_act="tanh")


def test_clear_errors_for_bad_inputs(brats_batch):
    pixel_values, labels = brats_batch
    model = tiny_model()
    with pytest.raises(ValueError, match="2D images are not supported"):
        model(pixel_values=torch.randn(2, 4, 16, 16))
    with pytest.raises(ValueError, match="in_channels=4"):
        model(pixel_values=torch.randn(2, 3, 16, 16, 16))
    with pytest.raises(ValueError, match="multiple of 2 \\*\\* \\(levels - 1\\) = 4.*predict_volume"):
        model(pixel_values=torch.randn(1, 4, 16, 16, 15))
    with pytest.raises(TypeError, match="floating-point"):
        model(pixel_values=torch.zeros(1, 4, 16, 16, 16, dtype=torch.long))
    bad = labels.clone()
    bad[0, 0, 0, 0] = 3
    with pytest.raises(ValueError, match="label_values"):
        model(pixel_values=pixel_values, labels=bad)
    with pytest.raises(ValueError, match="does not match"):
        model(pixel_values=pixel_values, labels=labels[:1])
    with pytest.raises(TypeError, match="integer"):
        model(pixel_values=pixel_values, labels=labels.float())


def test_conv_transpose_is_kaiming_initialised_and_loss_kwargs_are_off():
    model = tiny_model()
    up = model.rev_unet3d.upsample[0].up
    assert isinstance(up, torch.nn.ConvTranspose3d)
    fan_out = up.weight.shape[0] * up.weight[0, 0].numel()  # transposed conv: weight (in, out, k, k, k)
    expected = (2.0 / fan_out) ** 0.5
    assert 0.7 * expected < up.weight.std().item() < 1.3 * expected
    assert RevUNet3DForSemanticSegmentation.accepts_loss_kwargs is False


def test_save_and_load_through_auto_classes(tmp_path):
    from transformers import AutoConfig, AutoModel, AutoModelForSemanticSegmentation

    model = tiny_model(reversible=False).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "README.md").is_file()
    assert "rev_unet3d" in (tmp_path / "README.md").read_text()
    config = AutoConfig.from_pretrained(tmp_path)
    assert (
        isinstance(config, RevUNet3DConfig)
        and config.reversible is False
        and config.region_names == ["WT", "TC", "ET"]
    )
    loaded = AutoModelForSemanticSegmentation.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, RevUNet3DForSemanticSegmentation)
    x = torch.randn(1, 4, 16, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values=x).logits, model(pixel_values=x).logits)
    base = AutoModel.from_pretrained(tmp_path)
    assert isinstance(base, RevUNet3DModel)
    with torch.no_grad():
        torch.testing.assert_close(base(x).last_hidden_state, model.rev_unet3d(x).last_hidden_state)
