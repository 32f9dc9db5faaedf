"""Reversible-MBConv 3D U-Net (Pendse et al., BrainLes @ MICCAI 2020, arXiv 2104.09648).

Every resolution level of the encoder and the decoder is a :class:`~hf_eff.reversible.ReversibleSequence` of
RevNet couplings ``y2 = x2 + F(x1)``, ``y1 = x1 + G(y2)`` on channel halves, where ``F`` and ``G`` are 3D MBConv
transforms (1x1x1 expansion -> norm -> act, depthwise 3x3x3 -> norm -> act, [squeeze-excite], linear 1x1x1
projection -> norm). Only the transitions between levels (stem, strided-conv downsampling, upsampling, skip
fusion, head) are ordinary layers, so training stores the level boundaries (the "partially reversible" pattern of
Brügger et al., MICCAI 2019) and memory grows with the number of levels, not with the blocks per level.

``model.set_reversible(False)`` runs the same weights as an ordinary network storing activations (the baseline).
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SemanticSegmenterOutput
from transformers.utils import ModelOutput

from hf_eff.modelcard import ModelCardMixin
from hf_eff.models.reversible_mixin import ReversibleModelMixin
from hf_eff.reversible import ReversibleSequence, RevNetBlock

from .configuration_rev_unet3d import RevUNet3DConfig
from .inference_rev_unet3d import sliding_window_inference
from .labels_rev_unet3d import check_label_map, logits_to_label_map
from .loss_rev_unet3d import segmentation_loss


_ACTIVATIONS = {
    "silu": nn.SiLU,
    "relu6": nn.ReLU6,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "hardswish": nn.Hardswish,
}


@dataclass
class RevUNet3DModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state: decoder features at full resolution, ``(batch, channels[0], X, Y, Z)``.
        hidden_states: with ``output_hidden_states``: the output of every encoder level (fine to coarse), then of
            every decoder level (coarse to fine).
    """

    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


def _norm(config: RevUNet3DConfig, channels: int) -> nn.GroupNorm:
    """GroupNorm, or InstanceNorm written as GroupNorm with one group per channel (same maths, one code path)."""
    groups = config.norm_groups if config.norm == "group" else channels
    return nn.GroupNorm(groups, channels)


class RevUNet3DConvNormAct(nn.Module):
    """Conv3d (no bias: a norm follows) -> GroupNorm -> activation."""

    def __init__(self, config: RevUNet3DConfig, in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, **kw):
        super().__init__()
        self.conv = nn.Conv3d(in_ch, out_ch, kernel, stride, padding=(kernel - 1) // 2, bias=False, **kw)
        self.norm = _norm(config, out_ch)
        self.act = _ACTIVATIONS[config.hidden_act]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class RevUNet3DSqueezeExcite(nn.Module):
    def __init__(self, config: RevUNet3DConfig, channels: int, squeezed: int):
        super().__init__()
        self.reduce = nn.Conv3d(channels, squeezed, 1)
        self.act = _ACTIVATIONS[config.hidden_act]()
        self.expand = nn.Conv3d(squeezed, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=(2, 3, 4), keepdim=True)
        return x * torch.sigmoid(self.expand(self.act(self.reduce(scale))))


class RevUNet3DMBConv(nn.Module):
    """3D inverted bottleneck: 1x1x1 expand -> depthwise 3x3x3 -> [SE] -> linear 1x1x1 projection -> norm."""

    def __init__(self, config: RevUNet3DConfig, in_ch: int, out_ch: int):
        super().__init__()
        hidden = config.expanded(in_ch)
        self.expand_conv = RevUNet3DConvNormAct(config, in_ch, hidden)
        self.depthwise_conv = RevUNet3DConvNormAct(config, hidden, hidden, 3, groups=hidden)
        squeezed = max(1, round(in_ch * config.se_ratio))
        self.squeeze_excite = RevUNet3DSqueezeExcite(config, hidden, squeezed) if config.se_ratio > 0 else None
        self.project_conv = nn.Conv3d(hidden, out_ch, 1, bias=False)
        self.project_norm = _norm(config, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.depthwise_conv(self.expand_conv(x))
        if self.squeeze_excite is not None:
            x = self.squeeze_excite(x)
        return self.project_norm(self.project_conv(x))


def reversible_stage(config: RevUNet3DConfig, channels: int, blocks: int) -> ReversibleSequence:
    """``blocks`` RevNet couplings of MBConvs at one resolution (``F``: ceil(C/2) -> floor(C/2), ``G`` back)."""
    first, second = (channels + 1) // 2, channels // 2
    ops = [
        RevNetBlock(RevUNet3DMBConv(config, first, second), RevUNet3DMBConv(config, second, first))
        for _ in range(blocks)
    ]
    return ReversibleSequence(ops, reversible=config.reversible, preserve_rng_state=False)


class RevUNet3DUpsample(nn.Module):
    """x2 upsampling from ``in_ch`` to ``out_ch`` channels: transposed conv, or trilinear + 1x1x1 conv."""

    def __init__(self, config: RevUNet3DConfig, in_ch: int, out_ch: int):
        super().__init__()
        if config.upsample_mode == "transpose":
            self.up = nn.ConvTranspose3d(in_ch, out_ch, 2, stride=2, bias=False)
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False),
                nn.Conv3d(in_ch, out_ch, 1, bias=False),
            )
        self.norm = _norm(config, out_ch)
        self.act = _ACTIVATIONS[config.hidden_act]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.up(x)))


class RevUNet3DPreTrainedModel(ReversibleModelMixin, ModelCardMixin, PreTrainedModel):
    config: RevUNet3DConfig
    config_class = RevUNet3DConfig
    base_model_prefix = "rev_unet3d"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = False  # the levels are reversible; never wrap them in checkpointing
    accepts_loss_kwargs = False  # the loss is a mean over the batch (HF_CONVENTIONS §0.4)
    _no_split_modules = ["ReversibleSequence"]
    model_card_template = "rev_unet3d"

    def _init_weights(self, module: nn.Module) -> None:
        """Kaiming-normal (fan_out) for every Conv3d and ConvTranspose3d (transformers' default skips the
        latter), unit/zero GroupNorm; through ``transformers.initialization`` so it is meta-device safe."""
        if isinstance(module, (nn.Conv3d, nn.ConvTranspose3d)):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.GroupNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)

    def model_card_data(self) -> dict:
        return {
            "tags": ["rev_unet3d", "reversible", "3d-segmentation", "medical-imaging", "brats"],
            "pipeline_tag": "image-segmentation",
        }

    def model_card_variables(self) -> dict:
        return {**super().model_card_variables(), "num_parameters": sum(p.numel() for p in self.parameters())}


class RevUNet3DModel(RevUNet3DPreTrainedModel):
    """The U-Net body: stem, reversible encoder levels with strided-conv downsampling, reversible decoder levels
    with upsampling and skip fusion. Returns full-resolution decoder features."""

    def __init__(self, config: RevUNet3DConfig):
        super().__init__(config)
        widths, enc, dec = config.level_channels, config.encoder_blocks, config.decoder_blocks
        self.stem = RevUNet3DConvNormAct(config, config.in_channels, widths[0], 3)
        self.encoder = nn.ModuleList(reversible_stage(config, c, n) for c, n in zip(widths, enc))
        self.downsample = nn.ModuleList(
            RevUNet3DConvNormAct(config, widths[k], widths[k + 1], 3, stride=2) for k in range(len(widths) - 1)
        )
        self.upsample = nn.ModuleList(
            RevUNet3DUpsample(config, widths[k + 1], widths[k]) for k in range(len(widths) - 1)
        )
        self.skip_fusion = (
            nn.ModuleList(RevUNet3DConvNormAct(config, 2 * c, c) for c in widths[:-1])
            if config.skip_mode == "concat"
            else None
        )
        self.decoder = nn.ModuleList(reversible_stage(config, c, n) for c, n in zip(widths[:-1], dec))
        self.post_init()

    def check_input(self, pixel_values: torch.Tensor) -> None:
        """Clear errors for the usual mistakes: a 2D image, missing batch dim, wrong modalities, odd sizes."""
        if not isinstance(pixel_values, torch.Tensor) or not pixel_values.is_floating_point():
            raise TypeError(
                f"pixel_values must be a floating-point tensor, got {getattr(pixel_values, 'dtype', type(pixel_values))}"
            )
        c = self.config.in_channels
        if pixel_values.ndim != 5:
            raise ValueError(
                f"pixel_values must have shape (batch, {c}, X, Y, Z): a batch of 3D volumes; got "
                f"{pixel_values.ndim}D shape {tuple(pixel_values.shape)} (2D images are not supported; add the batch "
                "dimension for a single volume)"
            )
        if pixel_values.shape[1] != c:
            raise ValueError(
                f"pixel_values has {pixel_values.shape[1]} channels but the config expects in_channels={c} "
                f"(shape {tuple(pixel_values.shape)})"
            )
        m = self.config.size_multiple
        if any(s % m for s in pixel_values.shape[2:]):
            raise ValueError(
                f"every spatial side of pixel_values must be a multiple of 2 ** (levels - 1) = {m}, got "
                f"{tuple(pixel_values.shape[2:])}; use model.predict_volume(...) for volumes of any size"
            )

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> RevUNet3DModelOutput | tuple:
        self.check_input(pixel_values)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        hidden: list[torch.Tensor] = []
        skips = []
        x = self.stem(pixel_values)
        for level, stage in enumerate(self.encoder):
            (x,) = stage(x)
            hidden.append(x)
            if level < len(self.downsample):
                skips.append(x)
                x = self.downsample[level](x)
        for level in reversed(range(len(self.decoder))):
            x = self.upsample[level](x)
            skip = skips[level]
            x = x + skip if self.skip_fusion is None else self.skip_fusion[level](torch.cat([x, skip], dim=1))
            (x,) = self.decoder[level](x)
            hidden.append(x)
        output = RevUNet3DModelOutput(
            last_hidden_state=x, hidden_states=tuple(hidden) if output_hidden_states else None
        )
        return output if return_dict else output.to_tuple()


class RevUNet3DForSemanticSegmentation(RevUNet3DPreTrainedModel):
    """The U-Net with a 1x1x1 head: one sigmoid per region (BraTS WT/TC/ET) or a softmax over classes.

    ``forward(pixel_values, labels=None)`` takes crops whose sides are multiples of ``2 ** (levels - 1)`` and
    computes the soft-Dice loss itself when ``labels`` (an integer label map) are given. For whole scans of any
    size (e.g. 240 x 240 x 155 BraTS volumes) use :meth:`predict_volume`, which pads and blends sliding windows.
    """

    def __init__(self, config: RevUNet3DConfig):
        super().__init__(config)
        self.rev_unet3d = RevUNet3DModel(config)
        self.head = nn.Conv3d(config.level_channels[0], config.num_labels, 1)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> SemanticSegmenterOutput | tuple:
        if pixel_values is None:
            raise ValueError("pixel_values is required")
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if labels is not None:
            labels = check_label_map(labels, self.config.label_values)
            if labels.shape[0] != pixel_values.shape[0] or labels.shape[1:] != pixel_values.shape[2:]:
                raise ValueError(
                    f"labels shape {tuple(labels.shape)} does not match pixel_values {tuple(pixel_values.shape)}: "
                    "expected (batch, X, Y, Z)"
                )
        outputs = self.rev_unet3d(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.head(outputs.last_hidden_state)
        loss = segmentation_loss(self.config, logits, labels) if labels is not None else None
        output = SemanticSegmenterOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
        return output if return_dict else output.to_tuple()

    @torch.no_grad()
    def predict_volume(
        self,
        volume: torch.Tensor,
        output: str = "probabilities",
        roi_size: list[int] | None = None,
        overlap: float = 0.5,
        mode: str = "gaussian",
        sigma_scale: float = 0.125,
        batch_size: int = 1,
        pad_value: float = 0.0,
    ) -> torch.Tensor:
        """Segment whole volumes of any size (no cropping by the user): pad, overlapping windows of
        ``roi_size`` (default ``config.crop_size``), Gaussian blending of the logits, crop back.

        Args:
            volume: ``(in_channels, X, Y, Z)`` or ``(batch, in_channels, X, Y, Z)``, e.g. a 4 x 240 x 240 x 155
                BraTS scan; numpy arrays are accepted.
            output: ``"logits"``, ``"probabilities"`` (sigmoid per region or softmax over classes) or
                ``"labels"`` (a label map of ``config.label_values``; BraTS regions are decoded to {0, 1, 2, 4}).
            overlap, mode, sigma_scale, batch_size, pad_value: see
                :func:`~hf_eff.models.rev_unet3d.inference_rev_unet3d.sliding_window_inference`.

        Returns a tensor shaped like ``volume`` with ``num_labels`` channels (no channel dim for ``"labels"``);
        a batch dimension is returned only if one was given. The model is put in eval mode and left there.
        """
        if output not in ("logits", "probabilities", "labels"):
            raise ValueError(f"output must be 'logits', 'probabilities' or 'labels', got {output!r}")
        if not isinstance(volume, torch.Tensor):
            volume = torch.as_tensor(volume)
        if not volume.is_floating_point():
            volume = volume.float()
        unbatched = volume.ndim == 4
        batched = volume[None] if unbatched else volume
        if batched.ndim != 5 or batched.shape[1] != self.config.in_channels:
            raise ValueError(
                f"volume must have shape ({self.config.in_channels}, X, Y, Z) or (batch, {self.config.in_channels}, "
                f"X, Y, Z), got {tuple(volume.shape)}"
            )
        self.eval()
        param = next(self.parameters())
        batched = batched.to(device=param.device, dtype=param.dtype)
        logits = sliding_window_inference(
            lambda x: self(pixel_values=x).logits,
            batched,
            roi_size=self.config.crop_size if roi_size is None else roi_size,
            multiple=self.config.size_multiple,
            overlap=overlap,
            mode=mode,
            sigma_scale=sigma_scale,
            batch_size=batch_size,
            pad_value=pad_value,
        )
        if output == "labels":
            result = logits_to_label_map(
                logits, self.config.label_mode, self.config.label_values, self.config.region_labels
            )
        elif output == "probabilities":
            result = torch.sigmoid(logits) if self.config.label_mode == "regions" else torch.softmax(logits, dim=1)
        else:
            result = logits
        return result[0] if unbatched else result


__all__ = ["RevUNet3DForSemanticSegmentation", "RevUNet3DModel", "RevUNet3DPreTrainedModel"]
