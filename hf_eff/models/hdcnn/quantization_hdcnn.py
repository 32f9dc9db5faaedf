"""Layer parameter compression of HD-CNN by product quantisation (official ``matrix_quantization.cu``).

A weight, viewed as a matrix ``out x in`` (a conv's ``in`` is ``in_channels/groups * kh * kw``), is cut along
``in`` into segments of ``segment_length`` values. For every segment, k-means over the ``out`` row pieces finds
``num_centers`` (<= 256) centres; each row piece is stored as a uint8 index. The weight is reassembled on the fly
at every forward, so the model keeps working unchanged (and its codebook can still be fine-tuned).

The paper motivates compression for the K copies of the rear layers (the fine components); the official release
quantises the coarse copy. :func:`product_quantize_` therefore takes ``modules="fine" | "coarse" | "branches"``
(both) or explicit layer names. A layer is quantised only when that makes it smaller (``out`` must be well above
``num_centers``); the others are listed as skipped, never silently dropped.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F


class ProductQuantized(nn.Module):
    """A Linear or Conv2d whose weight is ``codebook[segment, codes[row, segment]]``, reassembled at each call.

    ``codes`` (uint8, ``out x segments``) is a persistent buffer and ``codebook`` (``segments x centers x d``) a
    parameter, so both are saved as safetensors and the checkpoint rebuilds the layer from the config alone.
    """

    def __init__(self, layer: nn.Linear | nn.Conv2d, num_centers: int, segment_length: int):
        super().__init__()
        if not isinstance(layer, (nn.Linear, nn.Conv2d)):
            raise TypeError(f"only nn.Linear and nn.Conv2d can be product-quantised, got {type(layer).__name__}")
        self.weight_shape = tuple(layer.weight.shape)
        self.kind = "linear" if isinstance(layer, nn.Linear) else "conv2d"
        if self.kind == "conv2d":
            self.conv_kwargs = {
                "stride": layer.stride,
                "padding": layer.padding,
                "dilation": layer.dilation,
                "groups": layer.groups,
            }
            if layer.padding_mode != "zeros":
                raise ValueError(f"padding_mode {layer.padding_mode!r} is not supported (only 'zeros')")
        out_features, in_features = self.weight_shape[0], layer.weight[0].numel()
        self.in_features = in_features
        self.segment_length = segment_length
        num_segments = -(-in_features // segment_length)
        device = layer.weight.device
        self.register_buffer("codes", torch.zeros(out_features, num_segments, dtype=torch.uint8, device=device))
        self.codebook = nn.Parameter(torch.zeros(num_segments, num_centers, segment_length, device=device))
        self.bias = None if layer.bias is None else nn.Parameter(layer.bias.detach().clone())

    def weight(self) -> torch.Tensor:
        segments = torch.arange(self.codebook.shape[0], device=self.codes.device)
        pieces = self.codebook[segments[None, :], self.codes.long()]  # (out, segments, d)
        return pieces.flatten(1)[:, : self.in_features].reshape(self.weight_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "linear":
            return F.linear(x, self.weight(), self.bias)
        return F.conv2d(x, self.weight(), self.bias, **self.conv_kwargs)

    @torch.no_grad()
    def fit(self, weight: torch.Tensor, iterations: int = 30, seed: int = 0) -> None:
        """Set codes and codebook by k-means of every segment's row pieces (Lloyd's algorithm, all segments at
        once)."""
        matrix = weight.detach().reshape(weight.shape[0], -1).float()
        pad = self.codes.shape[1] * self.segment_length - matrix.shape[1]
        matrix = F.pad(matrix, (0, pad))
        points = matrix.reshape(matrix.shape[0], -1, self.segment_length).transpose(0, 1)  # (segments, out, d)
        centers, codes = kmeans_batched(points, self.codebook.shape[1], iterations, seed)
        self.codebook.copy_(centers)
        self.codes.copy_(codes.T.to(torch.uint8))

    def nbytes(self) -> int:
        return self.codes.numel() * self.codes.element_size() + self.codebook.numel() * self.codebook.element_size()


def kmeans_batched(
    points: torch.Tensor, num_centers: int, iterations: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means of ``points`` (batch, n, d) into ``num_centers`` per batch entry; returns (centres, codes)."""
    batch, n, _ = points.shape
    if num_centers > n:
        raise ValueError(f"num_centers ({num_centers}) exceeds the number of points per segment ({n})")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    start = torch.rand(batch, n, generator=generator).argsort(dim=1)[:, :num_centers].to(points.device)
    centers = torch.gather(points, 1, start[..., None].expand(-1, -1, points.shape[2])).clone()
    codes = torch.zeros(batch, n, dtype=torch.long, device=points.device)
    for _ in range(iterations):
        codes = torch.cdist(points, centers).argmin(dim=2)
        sums = torch.zeros_like(centers).scatter_add_(1, codes[..., None].expand_as(points), points)
        counts = torch.zeros(batch, num_centers, device=points.device).scatter_add_(
            1, codes, torch.ones_like(codes, dtype=points.dtype)
        )
        filled = counts > 0  # an empty cluster keeps its centre
        centers = torch.where(filled[..., None], sums / counts.clamp_min(1)[..., None], centers)
    codes = torch.cdist(points, centers).argmin(dim=2)
    return centers, codes


@dataclass
class QuantizationReport:
    """What :func:`product_quantize_` did: bytes before and after, per layer and in total."""

    quantized: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    bytes_before: int = 0  # the quantised layers' fp32 weights
    bytes_after: int = 0  # their codes + codebooks
    model_bytes_before: int = 0
    model_bytes_after: int = 0

    @property
    def ratio(self) -> float:
        return self.bytes_before / self.bytes_after if self.bytes_after else float("nan")

    @property
    def model_bytes_saved(self) -> int:
        return self.model_bytes_before - self.model_bytes_after


_SCOPES = {"fine": ("fine.",), "coarse": ("coarse.",), "branches": ("fine.", "coarse.")}


def model_nbytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer (uint8 codes count one byte each)."""
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


@torch.no_grad()
def product_quantize_(
    model: nn.Module,
    modules: str | Iterable[str] = "fine",
    *,
    num_centers: int | None = None,
    segment_length: int | None = None,
    iterations: int = 30,
    seed: int = 0,
) -> QuantizationReport:
    """Product-quantise the Linear/Conv2d layers of an HD-CNN in place and record them in ``model.config``.

    Args:
        model: an :class:`~hf_eff.HDCNNForImageClassification`.
        modules: ``"fine"`` (the K fine components, the paper's motivation), ``"coarse"`` (the official release),
            ``"branches"`` (both), or explicit layer names.
        num_centers, segment_length: default to ``config.pq_num_centers`` / ``config.pq_segment_length``.

    Returns a :class:`QuantizationReport`; layers whose quantised form would not be smaller are skipped (listed).
    """
    config = model.config
    num_centers = config.pq_num_centers if num_centers is None else num_centers
    segment_length = config.pq_segment_length if segment_length is None else segment_length
    if not 2 <= num_centers <= 256:
        raise ValueError(f"num_centers must be in [2, 256] (uint8 codes), got {num_centers}")
    if segment_length < 1:
        raise ValueError(f"segment_length must be >= 1, got {segment_length}")
    done = list(config.pq_modules or [])
    if done and (num_centers, segment_length) != (config.pq_num_centers, config.pq_segment_length):
        raise ValueError("the model is already quantised with other num_centers/segment_length settings")
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    if isinstance(modules, str):
        if modules not in _SCOPES:
            raise ValueError(f"modules must be one of {list(_SCOPES)} or a list of layer names, got {modules!r}")
        names = [n for n in layers if n.startswith(_SCOPES[modules])]
    else:
        names = list(modules)
        unknown = [n for n in names if n not in layers]
        if unknown:
            raise ValueError(f"no Linear/Conv2d layer named {unknown} in the model")
    report = QuantizationReport(model_bytes_before=model_nbytes(model))
    for i, name in enumerate(names):
        layer = layers[name]
        if layer.weight.shape[0] < 2 * num_centers:
            report.skipped[name] = f"{layer.weight.shape[0]} output rows < 2 x num_centers ({num_centers})"
            continue
        quantized = ProductQuantized(layer, num_centers, segment_length)
        before = layer.weight.numel() * layer.weight.element_size()
        if quantized.nbytes() >= before:
            report.skipped[name] = "codes + codebook would not be smaller than the weight"
            continue
        quantized.fit(layer.weight, iterations=iterations, seed=seed + i)
        replace_module(model, name, quantized)
        report.quantized.append(name)
        report.bytes_before += before
        report.bytes_after += quantized.nbytes()
    config.pq_modules = done + report.quantized
    config.pq_num_centers, config.pq_segment_length = num_centers, segment_length
    report.model_bytes_after = model_nbytes(model)
    return report


__all__ = ["ProductQuantized", "QuantizationReport", "model_nbytes", "product_quantize_"]
