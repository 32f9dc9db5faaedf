"""Configuration of the reversible-MBConv 3D U-Net (Pendse et al., "Memory Efficient 3D U-Net with Reversible
Mobile Inverted Bottlenecks for Brain Tumor Segmentation", BrainLes @ MICCAI 2020, arXiv 2104.09648).

Only the paper's abstract has been checked; every architectural default below is a reference design (see
``specs/rev_unet3d.md`` §2.3), chosen to be configurable rather than guessed as a paper fact.
"""

import math
from typing import Any

from transformers import PreTrainedConfig


_ACTIVATIONS = ("silu", "relu6", "relu", "leaky_relu", "hardswish")
_NORMS = ("group", "instance")
_UPSAMPLES = ("transpose", "trilinear")
_SKIPS = ("add", "concat")
_LABEL_MODES = ("regions", "classes")
# BraTS: 0 background, 1 necrotic / non-enhancing core, 2 oedema, 4 enhancing tumour; evaluated on nested regions
BRATS_LABEL_VALUES = (0, 1, 2, 4)
BRATS_REGION_NAMES = ("WT", "TC", "ET")
BRATS_REGION_LABELS = ((1, 2, 4), (1, 4), (4,))


class RevUNet3DConfig(PreTrainedConfig):
    r"""
    A 3D U-Net whose same-resolution blocks are reversible RevNet couplings of 3D MBConv transforms (1x1x1
    expansion, depthwise 3x3x3, optional squeeze-excite, linear 1x1x1 projection). Down- and up-sampling, the stem
    and the head are ordinary (non-reversible) layers, so training memory grows with the number of *levels*, not
    with the number of blocks per level.

    Args:
        in_channels (`int`, defaults to 4): input modalities (BraTS: T1, T1ce, T2, FLAIR).
        channels (`list[int]`): width of each resolution level, fine to coarse (before `width_multiplier`).
        encoder_depths (`list[int]`): reversible blocks per encoder level (before `depth_multiplier`).
        decoder_depths (`list[int]`): reversible blocks per decoder level, fine to coarse (one entry fewer than
            `channels`; 0 is allowed).
        expand_ratio (`float`, defaults to 4): MBConv expansion of each half-width transform [U: MobileNetV2 uses 6].
        se_ratio (`float`, defaults to 0): squeeze-excite width relative to the transform input (0 disables it).
        hidden_act (`str`): activation after the expansion and the depthwise conv.
        norm (`str`): `"group"` (GroupNorm with `norm_groups` groups) or `"instance"` (one group per channel).
            Batch statistics are avoided on purpose: 3D batches hold 1-2 volumes.
        norm_groups (`int`): GroupNorm groups; must divide every normalised width (checked when the config is made).
        depth_multiplier, width_multiplier (`float`): the paper's depth and width scaling knobs. Blocks become
            `ceil(depth * depth_multiplier)`; channels are rounded to a multiple of `2 * norm_groups` (group norm)
            or 2 (instance norm) after scaling. 1.0 leaves the lists untouched.
        crop_size (`list[int]`): the training crop and the sliding-window size of `predict_volume` (the paper's
            third knob; each side must be a multiple of `2 ** (levels - 1)`).
        upsample_mode (`str`): `"transpose"` (ConvTranspose3d, stride 2) or `"trilinear"` (+ 1x1x1 conv).
        skip_mode (`str`): decoder skips by `"add"` (Brügger's partially reversible U-Net) or `"concat"` + 1x1x1.
        label_mode (`str`): `"regions"`: one sigmoid output per region of `region_names` / `region_labels`
            (BraTS WT/TC/ET, which overlap); `"classes"`: a softmax over `label_values`.
        label_values (`list[int]`): the values a label map may hold (class `i` of `"classes"` is `label_values[i]`).
        region_names, region_labels: the overlapping regions of `"regions"` mode and the label values in each.
        dice_smooth (`float`): the epsilon of the soft Dice `(2 sum(pg) + eps) / (sum(p) + sum(g) + eps)`.
        cross_entropy_weight (`float`): weight of BCE (regions) or cross-entropy (classes) added to the Dice loss.
        reversible (`bool`): train without storing block activations (False stores them; same weights/outputs).
    """

    model_type = "hf_eff_rev_unet3d"

    in_channels: int = 4
    channels: list[int] | tuple[int, ...] = (16, 32, 64, 128)
    encoder_depths: list[int] | tuple[int, ...] = (1, 1, 2, 2)
    decoder_depths: list[int] | tuple[int, ...] = (1, 1, 1)
    expand_ratio: float = 4.0
    se_ratio: float = 0.0
    hidden_act: str = "silu"
    norm: str = "group"
    norm_groups: int = 4
    depth_multiplier: float = 1.0
    width_multiplier: float = 1.0
    crop_size: list[int] | tuple[int, ...] = (128, 128, 128)
    upsample_mode: str = "transpose"
    skip_mode: str = "add"
    label_mode: str = "regions"
    label_values: list[int] | tuple[int, ...] = BRATS_LABEL_VALUES
    region_names: list[str] | tuple[str, ...] = BRATS_REGION_NAMES
    region_labels: list[list[int]] | tuple[tuple[int, ...], ...] = BRATS_REGION_LABELS
    dice_smooth: float = 1e-5
    cross_entropy_weight: float = 0.0
    reversible: bool = True

    def __post_init__(self, **kwargs: Any):
        for name in ("channels", "encoder_depths", "decoder_depths", "crop_size", "label_values", "region_names"):
            setattr(self, name, list(getattr(self, name)))
        self.region_labels = [list(r) for r in self.region_labels]
        self._validate()
        names = self.region_names if self.label_mode == "regions" else [str(v) for v in self.label_values]
        requested = kwargs.pop("num_labels", None)
        if requested is not None and requested != len(names):
            raise ValueError(
                f"num_labels={requested} does not match label_mode={self.label_mode!r}, which has {len(names)} "
                f"outputs ({names}); set region_names/region_labels or label_values instead"
            )
        if self.id2label is not None and len(self.id2label) != len(names):
            raise ValueError(
                f"id2label has {len(self.id2label)} entries but label_mode={self.label_mode!r} has {len(names)} "
                f"outputs ({names})"
            )
        if self.id2label is None:  # names given by the user (or a saved config) are kept
            self.id2label = dict(enumerate(names))
            self.label2id = {name: i for i, name in enumerate(names)}
        super().__post_init__(**kwargs)

    # ---- derived sizes -------------------------------------------------------------------------------------

    @property
    def num_levels(self) -> int:
        return len(self.channels)

    @property
    def size_multiple(self) -> int:
        """Every spatial side of an input must be a multiple of this (one halving per level transition)."""
        return 2 ** (self.num_levels - 1)

    @property
    def channel_divisor(self) -> int:
        return 2 * self.norm_groups if self.norm == "group" else 2

    @property
    def level_channels(self) -> list[int]:
        """Per-level widths after `width_multiplier`."""
        if self.width_multiplier == 1.0:
            return list(self.channels)
        q = self.channel_divisor
        return [max(q, round(c * self.width_multiplier / q) * q) for c in self.channels]

    @property
    def encoder_blocks(self) -> list[int]:
        return [self._scaled_depth(d) for d in self.encoder_depths]

    @property
    def decoder_blocks(self) -> list[int]:
        return [self._scaled_depth(d) for d in self.decoder_depths]

    def _scaled_depth(self, depth: int) -> int:
        return math.ceil(depth * self.depth_multiplier - 1e-9)

    def expanded(self, width: int) -> int:
        """Hidden width of an MBConv whose input has ``width`` channels."""
        return max(1, round(width * self.expand_ratio))

    # ---- validation ----------------------------------------------------------------------------------------

    def _validate(self) -> None:
        if not isinstance(self.in_channels, int) or self.in_channels < 1:
            raise ValueError(f"in_channels must be a positive int, got {self.in_channels!r}")
        n = len(self.channels)
        if n < 1:
            raise ValueError("channels must list at least one level width")
        if len(self.encoder_depths) != n:
            raise ValueError(f"encoder_depths needs one entry per level ({n}), got {self.encoder_depths}")
        if len(self.decoder_depths) != n - 1:
            raise ValueError(f"decoder_depths needs one entry per decoder level ({n - 1}), got {self.decoder_depths}")
        if any(d < 0 for d in self.encoder_depths + self.decoder_depths):
            raise ValueError("encoder_depths and decoder_depths must be >= 0")
        for name, value, options in (
            ("hidden_act", self.hidden_act, _ACTIVATIONS),
            ("norm", self.norm, _NORMS),
            ("upsample_mode", self.upsample_mode, _UPSAMPLES),
            ("skip_mode", self.skip_mode, _SKIPS),
            ("label_mode", self.label_mode, _LABEL_MODES),
        ):
            if value not in options:
                raise ValueError(f"{name} must be one of {options}, got {value!r}")
        if self.depth_multiplier <= 0 or self.width_multiplier <= 0:
            raise ValueError("depth_multiplier and width_multiplier must be > 0")
        if self.expand_ratio <= 0 or not 0 <= self.se_ratio <= 1:
            raise ValueError(
                f"expand_ratio must be > 0 and se_ratio in [0, 1], got {self.expand_ratio}, {self.se_ratio}"
            )
        if len(self.crop_size) != 3 or any(int(s) != s or s < 1 or s % self.size_multiple for s in self.crop_size):
            raise ValueError(
                f"crop_size must be 3 positive multiples of 2 ** (levels - 1) = {self.size_multiple}, got {self.crop_size}"
            )
        if len(set(self.label_values)) != len(self.label_values) or len(self.label_values) < 2:
            raise ValueError(f"label_values must list at least 2 distinct values, got {self.label_values}")
        if len(self.region_names) != len(self.region_labels) or not self.region_names:
            raise ValueError("region_names and region_labels must be non-empty and have the same length")
        for name, labels in zip(self.region_names, self.region_labels):
            if self.label_mode == "regions" and (not labels or not set(labels) <= set(self.label_values)):
                raise ValueError(f"region {name!r} must list label values from {self.label_values}, got {labels}")
        if not isinstance(self.norm_groups, int) or self.norm_groups < 1:
            raise ValueError(f"norm_groups must be a positive int, got {self.norm_groups!r}")
        for level, c in enumerate(self.level_channels):
            if c < 2:
                raise ValueError(f"level {level} needs at least 2 channels for the reversible split, got {c}")
            if self.norm != "group":
                continue
            halves = ((c + 1) // 2, c // 2)
            widths = {c, *halves, *(self.expanded(h) for h in halves)}
            bad = sorted(w for w in widths if w % self.norm_groups)
            if bad:
                raise ValueError(
                    f"norm_groups={self.norm_groups} must divide every normalised width, but level {level} "
                    f"({c} channels: halves {halves}, expanded {[self.expanded(h) for h in halves]}) has {bad}; "
                    "choose channels that are multiples of 2 * norm_groups, fewer groups, or norm='instance'"
                )


__all__ = ["RevUNet3DConfig"]
