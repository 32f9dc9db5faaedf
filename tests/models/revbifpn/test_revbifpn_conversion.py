"""Official checkpoint conversion, tested on a state dict laid out like the official release (key names and
shapes derived here, independently of the converter, from the official module tree)."""

import pytest
import torch
from transformers import AutoModelForImageClassification

from hf_eff import RevBiFPNConfig, RevBiFPNForImageClassification
from hf_eff.models.revbifpn.convert_official_checkpoint import convert_state_dict, main


def _conv_bn(keys: dict, prefix: str, cin: int, cout: int, kernel: int = 1, groups: int = 1) -> None:
    keys[f"{prefix}.conv.weight"] = (cout, cin // groups, kernel, kernel)
    for name, shape in (("weight", (cout,)), ("bias", (cout,)), ("running_mean", (cout,)), ("running_var", (cout,))):
        keys[f"{prefix}.norm.{name}"] = shape
    keys[f"{prefix}.norm.num_batches_tracked"] = ()


def _mbconv(keys: dict, prefix: str, cin: int, cout: int, kernel: int, expand: float, se: float) -> None:
    hidden = int(cin * expand)
    if expand != 1:
        _conv_bn(keys, f"{prefix}.exp_conv", cin, hidden)
    _conv_bn(keys, f"{prefix}.dw_conv", hidden, hidden, kernel, groups=hidden)
    if 0 < se <= 1:
        squeezed = max(1, int(cin * se))
        keys[f"{prefix}.se.se.1.weight"], keys[f"{prefix}.se.se.1.bias"] = (squeezed, hidden, 1, 1), (squeezed,)
        keys[f"{prefix}.se.se.3.weight"], keys[f"{prefix}.se.se.3.bias"] = (hidden, squeezed, 1, 1), (hidden,)
    _conv_bn(keys, f"{prefix}.project_conv", hidden, cout)


def official_layout(config: RevBiFPNConfig) -> dict[str, tuple]:
    """Key -> shape of the official `RevBiFPN(...)` state dict (rev_stack / RevTensorOps / RevResidualSilo /
    RecomputeSilo / ClassHead naming)."""
    keys: dict[str, tuple] = {}
    ch, dwk, dwkp = config.channels, config.depthwise_kernel_sizes, config.kernel_size_offsets
    exp, se = config.expand_ratios, config.se_ratios
    index, n = 1, 1  # rev_stack.0 is the parameter-free space-to-depth
    for layer in range(3 + config.num_extra_silos):
        for _ in range(config.blocks_per_layer):
            for k in range(n):
                half, rest = ch[k] // 2, ch[k] - ch[k] // 2
                base = f"rev_stack.{index}.rev_transform_{k}"
                _mbconv(keys, f"{base}.f.xform_0_1", rest, half, dwk[k] + dwkp[k], exp[k], se[k])
                _mbconv(keys, f"{base}.g.xform_0_1", half, rest, dwk[k] + dwkp[k], exp[k], se[k])
            index += 1
        m = n + 1 if layer < 3 else n
        for i in range(n):
            for j in range(i + 1, m):
                stride = 2 ** (j - i)
                _mbconv(
                    keys, f"rev_stack.{index}.f.xform_{i}_{j}", ch[i], ch[j], 2 * stride - 1 + dwkp[i], exp[i], se[i]
                )
        for i in range(m):  # the official G half-silo numbers streams coarse -> fine
            for j in range(i):
                prefix = f"rev_stack.{index}.g.xform_{m - 1 - i}_{m - 1 - j}.0"
                _mbconv(keys, prefix, ch[i], ch[j], 3 + dwkp[i], exp[j], se[j])
        index, n = index + 1, m
    neck = config.neck_channels
    for k in range(n):
        kernel = config.neck_depthwise_kernel_sizes[k] + config.neck_kernel_size_offsets[k]
        prefix = f"rev_stack.recomp_op.recomp_transform_{k}"
        _mbconv(keys, prefix, ch[k], neck[k], kernel, config.neck_expand_ratios[k], config.neck_se_ratios[k])
    for h in range(n - 1):
        kernel = 3 + config.neck_kernel_size_offsets[h + 1]
        prefix = f"head.pyramid_heads.{h}"
        _mbconv(keys, prefix, neck[h], neck[h + 1], kernel, config.neck_expand_ratios[h], config.neck_se_ratios[h])
    _conv_bn(keys, "head.final_conv", neck[-1], config.fc_features)
    keys["head.fc.weight"], keys["head.fc.bias"] = (config.num_labels, config.fc_features), (config.num_labels,)
    return keys


def random_official_state_dict(config: RevBiFPNConfig) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        key: torch.tensor(7) if key.endswith("num_batches_tracked") else torch.randn(shape, generator=generator)
        for key, shape in official_layout(config).items()
    }


@pytest.fixture(scope="module")
def s0_official():
    return random_official_state_dict(RevBiFPNConfig.from_variant("s0"))


def test_official_layout_has_the_golden_parameter_count(s0_official):
    count = sum(t.numel() for k, t in s0_official.items() if "running" not in k and "num_batches" not in k)
    assert count == 3_419_196  # the layout derived in this test is the official one


def test_converted_state_dict_loads_strictly_with_the_same_tensors(s0_official):
    with torch.device("meta"):
        model = RevBiFPNForImageClassification(RevBiFPNConfig.from_variant("s0"))
    converted = convert_state_dict(s0_official)
    model.load_state_dict(converted, strict=True, assign=True)  # raises on any missing/unexpected key or shape
    # spot checks through the structure: the coarse-to-fine numbering is reversed in the official tree
    # (rev_stack.6 is the second silo, 3 streams out: official g.xform_0_2 is coarsest -> finest)
    silo = model.revbifpn.encoder.ops[6]
    assert torch.equal(
        silo.up(2, 0)[0].depthwise_conv.conv.weight, s0_official["rev_stack.6.g.xform_0_2.0.dw_conv.conv.weight"]
    )
    assert torch.equal(
        silo.down(0, 2).project_conv.conv.weight, s0_official["rev_stack.6.f.xform_0_2.project_conv.conv.weight"]
    )
    block = model.revbifpn.encoder.ops[4].streams[1]
    assert torch.equal(
        block.g.squeeze_excite.reduce.weight, s0_official["rev_stack.4.rev_transform_1.g.xform_0_1.se.se.1.weight"]
    )
    assert torch.equal(model.classifier.weight, s0_official["head.fc.weight"])
    assert torch.equal(
        model.head.fusion[2].expand_conv.conv.weight, s0_official["head.pyramid_heads.2.exp_conv.conv.weight"]
    )


def test_backbone_prefix_drops_the_head(s0_official):
    converted = convert_state_dict(s0_official, prefix="")
    assert not any(k.startswith(("head.", "classifier.")) for k in converted)
    assert "encoder.ops.1.streams.0.transforms.f.depthwise_conv.conv.weight" in converted


def test_unknown_keys_are_rejected():
    with pytest.raises(ValueError, match="unrecognised key"):
        convert_state_dict({"something.else": torch.zeros(1)})


def test_command_line_conversion_end_to_end(tmp_path, s0_official):
    checkpoint = tmp_path / "revbifpn_s0.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in s0_official.items()}, "epoch": 1}, checkpoint)
    assert main([str(checkpoint), "--variant", "s0", "--output_dir", str(tmp_path / "hf")]) == 0
    model = AutoModelForImageClassification.from_pretrained(tmp_path / "hf")
    assert torch.equal(model.classifier.bias, s0_official["head.fc.bias"])
    assert (tmp_path / "hf" / "preprocessor_config.json").exists()
