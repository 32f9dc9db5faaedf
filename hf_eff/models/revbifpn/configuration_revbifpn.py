"""Configuration of RevBiFPN (Chiley et al., "RevBiFPN: The Fully Reversible Bidirectional Feature Pyramid
Network", MLSys 2023), with the S0-S6 presets of the official release."""

from typing import Any, ClassVar

from transformers import PreTrainedConfig
from transformers.backbone_utils import BackboneConfigMixin


# variant -> (width multiplier, extra 4-stream silos, training resolution, head dropout, stochastic depth)
# [official release: `revbifpn.py` arch_params]
_VARIANTS: dict[str, tuple[float, int, int, float, float]] = {
    "s0": (1.0, 2, 224, 0.25, 0.0),
    "s1": (4 / 3, 2, 256, 0.25, 0.0),
    "s2": (2.0, 2, 256, 0.30, 0.0),
    "s3": (8 / 3, 3, 288, 0.30, 0.05),
    "s4": (4.0, 4, 320, 0.40, 0.10),
    "s5": (16 / 3, 4, 352, 0.40, 0.10),
    "s6": (20 / 3, 5, 352, 0.60, 0.30),
}
_BASE_CHANNELS = (48, 64, 80, 160)
_BASE_NECK_CHANNELS = (48, 64, 128, 320)
_BASE_FC = 1280
_ACTIVATIONS = ("hardswish", "silu", "relu", "gelu")
_GATES = ("hardsigmoid", "sigmoid")


def _scaled(width: float, channels: int) -> int:
    return int(width * channels) // 16 * 16


class RevBiFPNConfig(BackboneConfigMixin, PreTrainedConfig):
    r"""
    RevBiFPN: a fully reversible multi-scale backbone. Reversible MBConv residual blocks per stream and RevSilos
    (invertible multi-scale fusion) are stacked so that training stores only the final feature maps; a small
    non-invertible neck (one MBConv per stream) and the classification head are recomputed in backward too.

    Args:
        num_channels (`int`, defaults to 3): image channels.
        channels (`list[int]`): body width of the four streams (strides 4, 8, 16, 32).
        depthwise_kernel_sizes, kernel_size_offsets (`list[int]`): per-stream depthwise kernel of the residual blocks
            is their sum; down-sampling transforms use `2 * stride - 1 + offset` (official `dwk`, `dwkp`).
        expand_ratios, se_ratios (`list`): per-stream MBConv expansion and squeeze-excite ratios.
        blocks_per_layer (`int`, defaults to 2): reversible residual blocks per stream before each silo.
        num_extra_silos (`int`): silos after the three that add streams (official `num_ext_layers`).
        stem_factor (`int`, defaults to 4): space-to-depth factor of the parameter-free stem.
        neck_channels (`list[int]` or `None`): output widths of the neck (`None` removes the neck).
        neck_depthwise_kernel_sizes, neck_kernel_size_offsets, neck_expand_ratios, neck_se_ratios: neck and
            classification-head MBConv settings.
        fc_features (`int`): width of the final 1x1 conv of the classification head (0 to skip it).
        classifier_dropout (`float`): dropout before the final linear layer.
        drop_path_rate (`float`): stochastic depth of the last layer; it ramps linearly with the layer index.
        zero_init_last_norm (`bool`): zero-init the last BatchNorm of residual transforms (never of new streams).
        hidden_act, gate_act (`str`): MBConv activation and squeeze-excite gate.
        batch_norm_eps, batch_norm_momentum (`float`): BatchNorm settings (official 1e-3, 0.1).
        upsample_mode (`str`): interpolation of the coarse-to-fine transforms.
        image_size (`int`): training resolution of the variant (inputs must be divisible by the total stride 32).
        reversible (`bool`): train without storing activations (False stores them, same weights and outputs).
        recompute_neck (`bool`): in reversible training, recompute the neck and the classification head in
            backward from the body's stored outputs, one pyramid level at a time, instead of storing their
            activations.
        variant (`str` or `None`): the preset this config was made from (informational).

    Example:

    ```python
    >>> from hf_eff import RevBiFPNConfig, RevBiFPNForImageClassification
    >>> config = RevBiFPNConfig.from_variant("s0", num_labels=10)
    >>> model = RevBiFPNForImageClassification(config)
    ```
    """

    model_type = "hf_eff_revbifpn"
    variants: ClassVar[tuple[str, ...]] = tuple(_VARIANTS)

    num_channels: int = 3
    channels: list[int] | tuple[int, ...] = _BASE_CHANNELS
    depthwise_kernel_sizes: list[int] | tuple[int, ...] = (3, 5, 5, 3)
    kernel_size_offsets: list[int] | tuple[int, ...] = (0, 0, 0, 2)
    expand_ratios: list[float] | tuple[float, ...] = (1, 1, 2, 2)
    se_ratios: list[float] | tuple[float, ...] = (0.25, 0.25, 0.125, 0.0)
    blocks_per_layer: int = 2
    num_extra_silos: int = 2
    stem_factor: int = 4
    neck_channels: list[int] | tuple[int, ...] | None = _BASE_NECK_CHANNELS
    neck_depthwise_kernel_sizes: list[int] | tuple[int, ...] = (3, 3, 3, 3)
    neck_kernel_size_offsets: list[int] | tuple[int, ...] = (2, 2, 2, 2)
    neck_expand_ratios: list[float] | tuple[float, ...] = (1, 2, 2, 2)
    neck_se_ratios: list[float] | tuple[float, ...] = (0.25, 0.25, 0.125, 0.125)
    fc_features: int = _BASE_FC
    classifier_dropout: float = 0.25
    drop_path_rate: float = 0.0
    zero_init_last_norm: bool = False
    hidden_act: str = "hardswish"
    gate_act: str = "hardsigmoid"
    batch_norm_eps: float = 1e-3
    batch_norm_momentum: float = 0.1
    upsample_mode: str = "bilinear"
    image_size: int = 224
    reversible: bool = True
    recompute_neck: bool = True
    variant: str | None = None

    def __post_init__(self, **kwargs: Any):
        for name in (
            "channels",
            "depthwise_kernel_sizes",
            "kernel_size_offsets",
            "expand_ratios",
            "se_ratios",
            "neck_depthwise_kernel_sizes",
            "neck_kernel_size_offsets",
            "neck_expand_ratios",
            "neck_se_ratios",
        ):
            setattr(self, name, list(getattr(self, name)))
        if self.neck_channels is not None:
            self.neck_channels = list(self.neck_channels)
        self._validate()
        self.stage_names = ["stem"] + [f"p{k + 2}" for k in range(len(self.channels))]
        out_features, out_indices = kwargs.pop("out_features", None), kwargs.pop("out_indices", None)
        if out_features is None and out_indices is None:
            out_features = self.stage_names[1:]  # the whole pyramid
        self.set_output_features_output_indices(out_features=out_features, out_indices=out_indices)
        super().__post_init__(**kwargs)

    def _validate(self) -> None:
        n = len(self.channels)
        if n < 2:
            raise ValueError(f"channels must list at least 2 stream widths, got {self.channels}")
        for name in ("depthwise_kernel_sizes", "kernel_size_offsets", "expand_ratios", "se_ratios"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} must have one entry per stream ({n}), got {getattr(self, name)}")
        if self.neck_channels is not None:
            for name in (
                "neck_channels",
                "neck_depthwise_kernel_sizes",
                "neck_kernel_size_offsets",
                "neck_expand_ratios",
                "neck_se_ratios",
            ):
                if len(getattr(self, name)) != n:
                    raise ValueError(f"{name} must have one entry per stream ({n}), got {getattr(self, name)}")
        if any(c < 2 for c in self.channels):
            raise ValueError(f"every stream needs at least 2 channels for the RevNet split, got {self.channels}")
        if self.stem_factor < 1:
            raise ValueError(f"stem_factor must be >= 1, got {self.stem_factor}")
        stem_channels = self.channels[0] // self.stem_factor**2
        if stem_channels * self.stem_factor**2 != self.channels[0] or stem_channels < self.num_channels:
            raise ValueError(
                f"channels[0] ({self.channels[0]}) must be a multiple of stem_factor**2 ({self.stem_factor**2}) "
                f"giving at least num_channels ({self.num_channels}) stacked input channels"
            )
        if self.blocks_per_layer < 0 or self.num_extra_silos < 0:
            raise ValueError("blocks_per_layer and num_extra_silos must be >= 0")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {self.drop_path_rate}")
        if not 0.0 <= self.classifier_dropout < 1.0:
            raise ValueError(f"classifier_dropout must be in [0, 1), got {self.classifier_dropout}")
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"hidden_act must be one of {_ACTIVATIONS}, got {self.hidden_act!r}")
        if self.gate_act not in _GATES:
            raise ValueError(f"gate_act must be one of {_GATES}, got {self.gate_act!r}")

    @property
    def stem_channels(self) -> int:
        """Input channels after stacking copies of the image (official `_stack_x`): ``channels[0] / 16``."""
        return self.channels[0] // self.stem_factor**2

    @property
    def total_stride(self) -> int:
        return self.stem_factor * 2 ** (len(self.channels) - 1)

    @classmethod
    def from_variant(cls, variant: str, **kwargs: Any) -> "RevBiFPNConfig":
        """The official S0-S6 architectures (``"s0"`` ... ``"s6"``); ``kwargs`` override any field."""
        key = str(variant).lower().removeprefix("revbifpn_").removeprefix("revbifpn-")
        if key not in _VARIANTS:
            raise ValueError(f"variant must be one of {list(_VARIANTS)}, got {variant!r}")
        width, extra, size, dropout, drop_path = _VARIANTS[key]
        preset = {
            "channels": [_scaled(width, c) for c in _BASE_CHANNELS],
            "neck_channels": [_scaled(width, c) for c in _BASE_NECK_CHANNELS],
            "fc_features": _scaled(width, _BASE_FC),
            "num_extra_silos": extra,
            "image_size": size,
            "classifier_dropout": dropout,
            "drop_path_rate": drop_path,
            "variant": key,
        }
        if "num_labels" not in kwargs and "id2label" not in kwargs:
            preset["num_labels"] = 1000
        return cls(**{**preset, **kwargs})


__all__ = ["RevBiFPNConfig"]
