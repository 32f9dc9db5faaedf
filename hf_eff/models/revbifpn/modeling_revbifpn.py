"""RevBiFPN: the fully reversible bidirectional feature pyramid network (Chiley et al., MLSys 2023).

The body is a :class:`~hf_eff.reversible.ReversibleSequence`: a parameter-free space-to-depth stem, then
``3 + num_extra_silos`` layers, each made of ``blocks_per_layer`` reversible MBConv residual blocks per stream and
one RevSilo (the first three silos each add a coarser stream: strides 4, 8, 16, 32). A non-invertible neck (one
MBConv per stream) and, for classification, the head's fine-to-coarse fusion are recomputed in backward from the
body's stored outputs, one pyramid level at a time (:func:`~hf_eff.reversible.recompute`). Training therefore
stores the four final feature maps and the head's running fusion (smaller than the maps), whatever the depth.

The module tree follows the official release closely (MBConv internals, transform placement, op indices), so
official checkpoints load by a pure key rename (see ``convert_official_checkpoint.py``).
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.backbone_utils import BackboneMixin
from transformers.modeling_outputs import BackboneOutput, ImageClassifierOutputWithNoAttention
from transformers.utils import ModelOutput

from hf_eff.modelcard import ModelCardMixin
from hf_eff.models.reversible_mixin import ReversibleModelMixin
from hf_eff.reversible import ParallelStreams, ReversibleSequence, RevNetBlock, RevSilo, SpaceToDepth, recompute

from .configuration_revbifpn import RevBiFPNConfig


_ACTIVATIONS = {"hardswish": nn.Hardswish, "silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU}
_GATES = {"hardsigmoid": nn.Hardsigmoid, "sigmoid": nn.Sigmoid}


@dataclass
class RevBiFPNModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state: the coarsest pyramid level, ``(batch, C, H/32, W/32)``.
        pooler_output: its global average, ``(batch, C)``.
        feature_maps: the four pyramid levels, fine (stride 4) to coarse (stride 32), after the neck if any.
        hidden_states: with ``output_hidden_states``: the stem output followed by the four levels.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    feature_maps: tuple[torch.FloatTensor, ...] | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth per sample (rescaled so the expectation is unchanged)."""
    if not training or rate == 0.0:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask.div_(keep)


class RevBiFPNConvNormAct(nn.Module):
    """Conv (no bias) -> BatchNorm -> activation; ``zero_init`` starts the BatchNorm scale at 0."""

    def __init__(
        self,
        config: RevBiFPNConfig,
        in_ch: int,
        out_ch: int,
        kernel: int = 1,
        stride: int = 1,
        groups: int = 1,
        act: bool = True,
        zero_init: bool = False,
    ):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)
        self.norm = nn.BatchNorm2d(out_ch, eps=config.batch_norm_eps, momentum=config.batch_norm_momentum)
        self.norm.zero_init_weight = zero_init  # read by _init_weights
        self.act = _ACTIVATIONS[config.hidden_act]() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class RevBiFPNSqueezeExcite(nn.Module):
    def __init__(self, config: RevBiFPNConfig, channels: int, squeezed: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.act = _ACTIVATIONS[config.hidden_act]()
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.gate = _GATES[config.gate_act]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=tuple(range(2, x.ndim)), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(scale))))


class RevBiFPNMBConv(nn.Module):
    """Inverted bottleneck: [1x1 expand] -> kxk depthwise (stride) -> [squeeze-excite] -> 1x1 project (no act)
    -> stochastic depth. The squeeze width is ``in_ch * se_ratio`` as in the official code."""

    def __init__(
        self,
        config: RevBiFPNConfig,
        in_ch: int,
        out_ch: int,
        kernel: int,
        expand_ratio: float,
        se_ratio: float,
        stride: int = 1,
        drop_path_rate: float = 0.0,
        zero_init: bool = False,
    ):
        super().__init__()
        hidden = int(in_ch * expand_ratio)
        self.expand_conv = RevBiFPNConvNormAct(config, in_ch, hidden) if expand_ratio != 1 else None
        self.depthwise_conv = RevBiFPNConvNormAct(config, hidden, hidden, kernel, stride, groups=hidden)
        self.squeeze_excite = (
            RevBiFPNSqueezeExcite(config, hidden, max(1, int(in_ch * se_ratio))) if 0 < se_ratio <= 1 else None
        )
        self.project_conv = RevBiFPNConvNormAct(config, hidden, out_ch, act=False, zero_init=zero_init)
        self.drop_path_rate = drop_path_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.expand_conv is not None:
            x = self.expand_conv(x)
        x = self.depthwise_conv(x)
        if self.squeeze_excite is not None:
            x = self.squeeze_excite(x)
        return drop_path(self.project_conv(x), self.drop_path_rate, self.training)


def _build_layer(config: RevBiFPNConfig, widths: list[int], new_width: int | None, rate: float) -> list:
    """One make-layer: ``blocks_per_layer`` per-stream RevNet blocks, then a RevSilo (adding a stream if
    ``new_width``). Kernel, expansion and SE choices follow the official `add_rev_make_layer`."""
    dwk, dwkp = config.depthwise_kernel_sizes, config.kernel_size_offsets
    exp, se, zero = config.expand_ratios, config.se_ratios, config.zero_init_last_norm
    ops = []
    for _ in range(config.blocks_per_layer):
        blocks = []
        for k, c in enumerate(widths):
            half, rest = c // 2, c - c // 2
            kw = {
                "kernel": dwk[k] + dwkp[k],
                "expand_ratio": exp[k],
                "se_ratio": se[k],
                "drop_path_rate": rate,
                "zero_init": zero,
            }
            blocks.append(
                RevNetBlock(RevBiFPNMBConv(config, rest, half, **kw), RevBiFPNMBConv(config, half, rest, **kw))
            )
        ops.append(ParallelStreams(blocks))
    outs = widths + ([new_width] if new_width else [])
    last = len(outs) - 1
    down, up = {}, {}
    for i in range(len(widths)):
        for j in range(i + 1, len(outs)):
            stride = 2 ** (j - i)
            new = bool(new_width) and j == last  # a created stream: no zero-init, no stochastic depth
            down[(i, j)] = RevBiFPNMBConv(
                config, outs[i], outs[j], 2 * stride - 1 + dwkp[i], exp[i], se[i], stride,
                drop_path_rate=0.0 if new else rate, zero_init=zero and not new,
            )  # fmt: skip
    for i in range(len(outs)):
        for j in range(i):
            conv = RevBiFPNMBConv(config, outs[i], outs[j], 3 + dwkp[i], exp[j], se[j], 1, rate, zero)
            up[(i, j)] = nn.Sequential(conv, nn.Upsample(scale_factor=2 ** (i - j), mode=config.upsample_mode))
    ops.append(RevSilo(len(widths), down, up, add_stream=bool(new_width)))
    return ops


class RevBiFPNNeck(nn.ModuleList):
    """One MBConv per stream (official `FPN_Neck`)."""

    def __init__(self, config: RevBiFPNConfig):
        super().__init__(
            RevBiFPNMBConv(config, c, h, k + p, e, s)
            for c, h, k, p, e, s in zip(
                config.channels,
                config.neck_channels,
                config.neck_depthwise_kernel_sizes,
                config.neck_kernel_size_offsets,
                config.neck_expand_ratios,
                config.neck_se_ratios,
            )
        )

    def forward(self, *streams: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(m(x) for m, x in zip(self, streams))


class RevBiFPNClassificationHead(nn.Module):
    """Fuse the pyramid fine -> coarse (``out = x[k+1] + MBConv_stride2(out)``), then 1x1 conv + BN + act and a
    global average: ``(batch, fc_features)``. Dropout and the linear classifier live in the task model."""

    def __init__(self, config: RevBiFPNConfig):
        super().__init__()
        widths = config.neck_channels if config.neck_channels is not None else config.channels
        offsets = config.neck_kernel_size_offsets if config.neck_channels is not None else config.kernel_size_offsets
        exp = config.neck_expand_ratios if config.neck_channels is not None else config.expand_ratios
        se = config.neck_se_ratios if config.neck_channels is not None else config.se_ratios
        self.fusion = nn.ModuleList(
            RevBiFPNMBConv(config, widths[h], widths[h + 1], 3 + offsets[h + 1], exp[h], se[h], stride=2)
            for h in range(len(widths) - 1)
        )
        self.final_conv = RevBiFPNConvNormAct(config, widths[-1], config.fc_features) if config.fc_features else None
        self.num_features = config.fc_features or widths[-1]

    def fuse(self, level: int, x: torch.Tensor, fused: torch.Tensor | None) -> torch.Tensor:
        """One fusion step: level 0 starts the walk, level ``k`` adds the stride-2 MBConv of the fusion so far."""
        return x if level == 0 else x + self.fusion[level - 1](fused)

    def pool(self, fused: torch.Tensor) -> torch.Tensor:
        if self.final_conv is not None:
            fused = self.final_conv(fused)
        return fused.mean(dim=(2, 3))

    def forward(self, *pyramid: torch.Tensor) -> torch.Tensor:
        fused = None
        for level, x in enumerate(pyramid):
            fused = self.fuse(level, x, fused)
        return self.pool(fused)


class RevBiFPNPreTrainedModel(ReversibleModelMixin, ModelCardMixin, PreTrainedModel):
    config: RevBiFPNConfig
    config_class = RevBiFPNConfig
    base_model_prefix = "revbifpn"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = False  # the body is reversible; never wrap it in checkpointing
    accepts_loss_kwargs = False
    _no_split_modules = ["ReversibleSequence"]
    model_card_template = "revbifpn"

    def _init_weights(self, module: nn.Module) -> None:
        """Kaiming-normal (fan_out) convs, unit BN (zero gamma where zero-init is asked), PyTorch-default
        linear layers: the official initialisation, through ``transformers.initialization`` (meta-safe)."""
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            (init.zeros_ if getattr(module, "zero_init_weight", False) else init.ones_)(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)
        elif isinstance(module, nn.Linear):
            bound = 1.0 / module.in_features**0.5
            init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                init.uniform_(module.bias, -bound, bound)

    def model_card_data(self) -> dict:
        return {"tags": ["revbifpn", "reversible", "image-classification"], "pipeline_tag": "image-classification"}

    def model_card_variables(self) -> dict:
        n_params = sum(p.numel() for p in self.parameters())
        return {**super().model_card_variables(), "num_parameters": n_params}


class RevBiFPNModel(RevBiFPNPreTrainedModel):
    """The reversible body (+ neck): returns the four-level feature pyramid."""

    def __init__(self, config: RevBiFPNConfig):
        super().__init__(config)
        ops: list = [SpaceToDepth(config.stem_factor)]
        n = len(config.channels)
        total = n - 1 + config.num_extra_silos
        for layer in range(1, total + 1):
            widths = list(config.channels[: min(layer, n)])
            new_width = config.channels[layer] if layer < n else None
            ops += _build_layer(config, widths, new_width, config.drop_path_rate * layer / total)
        self.encoder = ReversibleSequence(ops, reversible=config.reversible)
        self.neck = RevBiFPNNeck(config) if config.neck_channels is not None else None
        self.post_init()

    def _stack_input(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Validate, cast to the model's dtype (float64 images just work), then repeat the image along channels up
        to ``channels[0] / stem_factor**2`` channels."""
        if not isinstance(pixel_values, torch.Tensor):
            raise TypeError(f"pixel_values must be a floating-point torch.Tensor, got {type(pixel_values).__name__}")
        if not pixel_values.is_floating_point():
            raise TypeError(
                f"pixel_values must be a floating-point tensor, got dtype {pixel_values.dtype}: preprocess images "
                "with RevBiFPNImageProcessor (which rescales and normalises them)"
            )
        if pixel_values.ndim != 4 or pixel_values.shape[1] != self.config.num_channels:
            raise ValueError(
                f"pixel_values must have shape (batch, {self.config.num_channels}, height, width), "
                f"got {tuple(pixel_values.shape)}"
            )
        stride = self.config.total_stride
        if pixel_values.shape[2] % stride or pixel_values.shape[3] % stride:
            raise ValueError(
                f"pixel_values height and width must be divisible by the total stride {stride}, "
                f"got {tuple(pixel_values.shape[2:])}"
            )
        pixel_values = pixel_values.to(self.dtype)
        copies, rest = divmod(self.config.stem_channels, self.config.num_channels)
        return torch.cat([pixel_values] * copies + [pixel_values[:, :rest]], dim=1)

    def encode(self, pixel_values: torch.Tensor, head: RevBiFPNClassificationHead | None = None):
        """Run the body (+ neck, + ``head`` if given) and return the pyramid (or ``head``'s output).

        In reversible training with ``config.recompute_neck`` the neck and ``head`` are recomputed in backward from
        the body's stored outputs, one pyramid level at a time, so that only one level's activations are alive.
        """
        x = self._stack_input(pixel_values)
        self.encoder.reversible = self.config.reversible
        pyramid = self.encoder(x)
        if not (self.config.reversible and self.config.recompute_neck):
            pyramid = self.neck(*pyramid) if self.neck is not None else pyramid
            return head(*pyramid) if head is not None else pyramid
        if head is None:
            if self.neck is None:
                return pyramid
            return tuple(recompute(self.neck[k], y, modules=[self.neck[k]]) for k, y in enumerate(pyramid))
        fused = None
        for level, y in enumerate(pyramid):  # each node lists exactly the modules it runs (see `recompute`)
            used = [self.neck[level]] if self.neck is not None else []
            used += [head.fusion[level - 1]] if level else []
            fused = recompute(self._neck_and_fuse, head, level, y, fused, modules=used)
        return recompute(head.pool, fused, modules=[m for m in (head.final_conv,) if m is not None])

    def _neck_and_fuse(
        self, head: RevBiFPNClassificationHead, level: int, y: torch.Tensor, fused: torch.Tensor | None
    ) -> torch.Tensor:
        return head.fuse(level, y if self.neck is None else self.neck[level](y), fused)

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> RevBiFPNModelOutput | tuple:
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        pyramid = tuple(self.encode(pixel_values))
        hidden_states = None
        if output_hidden_states:
            stem = self.encoder.ops[0](self._stack_input(pixel_values))[0]
            hidden_states = (stem, *pyramid)
        output = RevBiFPNModelOutput(
            last_hidden_state=pyramid[-1],
            pooler_output=pyramid[-1].mean(dim=(2, 3)),
            feature_maps=pyramid,
            hidden_states=hidden_states,
        )
        return output if return_dict else output.to_tuple()


class RevBiFPNForImageClassification(RevBiFPNPreTrainedModel):
    """RevBiFPN with the official classification head (pyramid fusion, 1x1 conv, pool, dropout, linear)."""

    def __init__(self, config: RevBiFPNConfig):
        super().__init__(config)
        self.revbifpn = RevBiFPNModel(config)
        self.head = RevBiFPNClassificationHead(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(self.head.num_features, config.num_labels)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> ImageClassifierOutputWithNoAttention | tuple:
        if pixel_values is None:
            raise ValueError("pixel_values is required")
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        pooled = self.revbifpn.encode(pixel_values, head=self.head)
        logits = self.classifier(self.dropout(pooled))
        loss = self._loss(logits, labels) if labels is not None else None
        hidden_states = None
        if output_hidden_states:
            hidden_states = self.revbifpn(pixel_values, output_hidden_states=True).hidden_states
        output = ImageClassifierOutputWithNoAttention(loss=loss, logits=logits, hidden_states=hidden_states)
        return output if return_dict else output.to_tuple()

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        problem = self.config.problem_type
        if problem is None:
            if self.config.num_labels == 1:
                problem = "regression"
            elif labels.dtype in (torch.long, torch.int):
                problem = "single_label_classification"
            else:
                problem = "multi_label_classification"
        if problem == "regression":
            return nn.functional.mse_loss(logits.squeeze(-1), labels.to(logits.dtype).squeeze(-1))
        if problem == "single_label_classification":
            if labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
                raise ValueError(f"labels must have shape ({logits.shape[0]},), got {tuple(labels.shape)}")
            return nn.functional.cross_entropy(logits, labels)
        return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


class RevBiFPNBackbone(BackboneMixin, RevBiFPNPreTrainedModel):
    """The feature pyramid as a transformers backbone (strides 4/8/16/32, stage names ``p2`` ... ``p5``)."""

    has_attentions = False

    def __init__(self, config: RevBiFPNConfig):
        super().__init__(config)
        self.revbifpn = RevBiFPNModel(config)
        levels = config.neck_channels if config.neck_channels is not None else config.channels
        self.num_features = [config.channels[0], *levels]
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BackboneOutput | tuple:
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        need_stem = output_hidden_states or "stem" in self.out_features
        outputs = self.revbifpn(pixel_values, output_hidden_states=need_stem, return_dict=True)
        stages = outputs.hidden_states if need_stem else (None, *outputs.feature_maps)
        feature_maps = tuple(h for name, h in zip(self.stage_names, stages) if name in self.out_features)
        hidden_states = outputs.hidden_states if output_hidden_states else None
        output = BackboneOutput(feature_maps=feature_maps, hidden_states=hidden_states, attentions=None)
        return output if return_dict else output.to_tuple()


__all__ = [
    "RevBiFPNBackbone",
    "RevBiFPNForImageClassification",
    "RevBiFPNModel",
    "RevBiFPNPreTrainedModel",
]
