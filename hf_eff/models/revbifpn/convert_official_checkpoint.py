"""Convert the official RevBiFPN checkpoints (``revbifpn_s{0..6}.pth.tar`` from CerebrasResearch/RevBiFPN) to a
transformers folder (``config.json`` + ``model.safetensors`` + image processor).

The official module tree maps onto ours by a pure key rename (no tensor is reshaped):

=====================================================  =====================================================
official                                               hf_eff
=====================================================  =====================================================
``rev_stack.{n}.rev_transform_{k}.{f,g}.xform_0_1.*``  ``revbifpn.encoder.ops.{n}.streams.{k}.transforms.{f,g}.*``
``rev_stack.{n}.f.xform_{i}_{j}.*``                    ``revbifpn.encoder.ops.{n}.transforms.down_{i}_{j}.*``
``rev_stack.{n}.g.xform_{r}_{s}.0.*``                  ``revbifpn.encoder.ops.{n}.transforms.up_{M-1-r}_{M-1-s}.0.*``
``rev_stack.recomp_op.recomp_transform_{k}.*``         ``revbifpn.neck.{k}.*``
``head.pyramid_heads.{h}.*`` / ``head.final_conv.*``   ``head.fusion.{h}.*`` / ``head.final_conv.*``
``head.fc.*``                                          ``classifier.*``
=====================================================  =====================================================

The official coarse-to-fine half-silo stores its streams in reversed order (``r = M - 1 - stream``, M = streams
after the silo). Inside every MBConv: ``exp_conv -> expand_conv``, ``dw_conv -> depthwise_conv``,
``se.se.1 -> squeeze_excite.reduce``, ``se.se.3 -> squeeze_excite.expand``.

Usage::

    python -m hf_eff.models.revbifpn.convert_official_checkpoint revbifpn_s0.pth.tar --variant s0 --output_dir s0
"""

import argparse
import re
from collections.abc import Mapping
from pathlib import Path

import torch


_MBCONV_RENAMES = (
    ("exp_conv.", "expand_conv."),
    ("dw_conv.", "depthwise_conv."),
    ("se.se.1.", "squeeze_excite.reduce."),
    ("se.se.3.", "squeeze_excite.expand."),
)
_BLOCK = re.compile(r"^rev_stack\.(\d+)\.rev_transform_(\d+)\.([fg])\.xform_0_1\.(.+)$")
_DOWN = re.compile(r"^rev_stack\.(\d+)\.f\.xform_(\d+)_(\d+)\.(.+)$")
_UP = re.compile(r"^rev_stack\.(\d+)\.g\.xform_(\d+)_(\d+)\.(.+)$")
_NECK = re.compile(r"^rev_stack\.recomp_op\.recomp_transform_(\d+)\.(.+)$")
_FUSION = re.compile(r"^head\.pyramid_heads\.(\d+)\.(.+)$")


def _mbconv(rest: str) -> str:
    for old, new in _MBCONV_RENAMES:
        if rest.startswith(old):
            return new + rest[len(old) :]
    return rest


def _silo_outputs(keys: list[str]) -> dict[int, int]:
    """Streams after each silo: the official G half holds transforms between every pair of its M streams."""
    outputs: dict[int, int] = {}
    for key in keys:
        match = _UP.match(key)
        if match:
            n, r, s = int(match[1]), int(match[2]), int(match[3])
            outputs[n] = max(outputs.get(n, 0), r + 1, s + 1)
    return outputs


def official_to_hf_key(key: str, silo_outputs: Mapping[int, int], prefix: str = "revbifpn.") -> str:
    """Our name for one official state-dict key (``prefix`` is where the base model sits in the target)."""
    if match := _BLOCK.match(key):
        n, k, half, rest = match.groups()
        return f"{prefix}encoder.ops.{n}.streams.{k}.transforms.{half}.{_mbconv(rest)}"
    if match := _DOWN.match(key):
        n, i, j, rest = match.groups()
        return f"{prefix}encoder.ops.{n}.transforms.down_{i}_{j}.{_mbconv(rest)}"
    if match := _UP.match(key):
        n, r, s, rest = int(match[1]), int(match[2]), int(match[3]), match[4]
        if not rest.startswith("0."):
            raise ValueError(f"unexpected coarse-to-fine transform key {key!r} (expected '.0.' then an MBConv)")
        last = silo_outputs[n] - 1
        return f"{prefix}encoder.ops.{n}.transforms.up_{last - r}_{last - s}.0.{_mbconv(rest[2:])}"
    if match := _NECK.match(key):
        return f"{prefix}neck.{match[1]}.{_mbconv(match[2])}"
    if match := _FUSION.match(key):
        return f"head.fusion.{match[1]}.{_mbconv(match[2])}"
    if key.startswith("head.final_conv."):
        return key
    if key.startswith("head.fc."):
        return "classifier." + key[len("head.fc.") :]
    raise ValueError(f"unrecognised key in the official checkpoint: {key!r}")


def convert_state_dict(official: Mapping[str, torch.Tensor], prefix: str = "revbifpn.") -> dict[str, torch.Tensor]:
    """Rename every key of an official RevBiFPN state dict; tensors are passed through unchanged."""
    keys = list(official)
    outputs = _silo_outputs(keys)
    converted = {}
    for key in keys:
        if prefix == "" and key.startswith("head."):
            continue  # a base model or backbone has no classification head
        converted[official_to_hf_key(key, outputs, prefix)] = official[key]
    return converted


def load_official_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``.pth.tar`` safely (``weights_only=True``); unwrap ``state_dict``/``model`` and DDP prefixes."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model"):
        if isinstance(checkpoint, Mapping) and wrapper in checkpoint and isinstance(checkpoint[wrapper], Mapping):
            checkpoint = checkpoint[wrapper]
    if not isinstance(checkpoint, Mapping) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in checkpoint.items()}


def convert_checkpoint(checkpoint: str | Path, variant: str, output_dir: str | Path) -> Path:
    """Build RevBiFPN-``variant`` for 1000 ImageNet classes, load the official weights strictly, save it."""
    from transformers import AutoModelForImageClassification

    from hf_eff.models.revbifpn import RevBiFPNConfig, RevBiFPNImageProcessor

    config = RevBiFPNConfig.from_variant(variant)
    model = AutoModelForImageClassification.from_config(config)
    state = convert_state_dict(load_official_state_dict(checkpoint))
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"checkpoint does not match RevBiFPN-{variant}: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
    output_dir = Path(output_dir)
    model.save_pretrained(output_dir)
    if RevBiFPNImageProcessor is not None:
        RevBiFPNImageProcessor.for_resolution(config.image_size).save_pretrained(output_dir)
    return output_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="official revbifpn_sX.pth.tar")
    parser.add_argument("--variant", required=True, help="s0 ... s6")
    parser.add_argument("--output_dir", required=True)
    args = parser.parse_args(argv)
    print(convert_checkpoint(args.checkpoint, args.variant, args.output_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
