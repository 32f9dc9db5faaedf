"""Label maps <-> network targets and predictions, BraTS style.

A BraTS label map holds 0 (background), 1 (necrotic / non-enhancing core), 2 (oedema) and 4 (enhancing tumour).
It is evaluated on three *nested* regions, WT = {1, 2, 4} ⊃ TC = {1, 4} ⊃ ET = {4}, each predicted by its own
sigmoid (``label_mode="regions"``); ``label_mode="classes"`` is a plain softmax over the label values.
"""

from collections.abc import Sequence

import torch


def check_label_map(labels: torch.Tensor, label_values: Sequence[int], name: str = "labels") -> torch.Tensor:
    """Validate an integer label map ``(batch, D, H, W)`` (or ``(batch, 1, D, H, W)``) and return it 4D."""
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.is_complex():
        raise TypeError(f"{name} must be an integer tensor label map, got {getattr(labels, 'dtype', type(labels))}")
    if labels.ndim == 5 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 4:
        raise ValueError(f"{name} must have shape (batch, depth, height, width), got {tuple(labels.shape)}")
    values = torch.as_tensor(list(label_values), device=labels.device)
    if not torch.isin(labels, values).all():
        found = torch.unique(labels).tolist()
        raise ValueError(f"{name} holds values {found}; expected only the config's label_values {list(label_values)}")
    return labels


def label_map_to_regions(labels: torch.Tensor, region_labels: Sequence[Sequence[int]]) -> torch.Tensor:
    """``(batch, D, H, W)`` label map -> ``(batch, regions, D, H, W)`` binary float masks (regions may overlap)."""
    masks = [torch.isin(labels, torch.as_tensor(list(r), device=labels.device)) for r in region_labels]
    return torch.stack(masks, dim=1).float()


def label_map_to_classes(labels: torch.Tensor, label_values: Sequence[int]) -> torch.Tensor:
    """``(batch, D, H, W)`` label map of ``label_values`` -> class indices ``0 .. len(label_values) - 1``."""
    index = torch.zeros_like(labels)
    for i, value in enumerate(label_values):
        index[labels == value] = i
    return index


def regions_to_label_map(
    regions: torch.Tensor, region_labels: Sequence[Sequence[int]], background: int = 0
) -> torch.Tensor:
    """Binary region masks ``(batch, regions, ...)`` -> a label map, nested-region style.

    Regions are painted from the largest label set to the smallest, each voxel getting the label that belongs to
    its innermost region but to no region inside it (BraTS: WT\\TC -> 2, TC\\ET -> 1, ET -> 4). This inverts
    :func:`label_map_to_regions` whenever the regions are nested (checked in the tests for BraTS).
    """
    order = sorted(range(len(region_labels)), key=lambda r: -len(region_labels[r]))
    out = torch.full(regions[:, 0].shape, background, dtype=torch.long, device=regions.device)
    for position, r in enumerate(order):
        inner = {
            v for q in order[position + 1 :] for v in region_labels[q] if set(region_labels[q]) < set(region_labels[r])
        }
        own = [v for v in region_labels[r] if v not in inner]
        if own:
            out[regions[:, r].bool()] = min(own)
    return out


def logits_to_label_map(
    logits: torch.Tensor,
    label_mode: str,
    label_values: Sequence[int],
    region_labels: Sequence[Sequence[int]],
    threshold: float = 0.5,
) -> torch.Tensor:
    """Network output ``(batch, outputs, D, H, W)`` -> label map of the dataset's values (``(batch, D, H, W)``)."""
    if label_mode == "regions":
        return regions_to_label_map(torch.sigmoid(logits) > threshold, region_labels, background=min(label_values))
    values = torch.as_tensor(list(label_values), device=logits.device)
    return values[logits.argmax(dim=1)]


__all__ = [
    "check_label_map",
    "label_map_to_classes",
    "label_map_to_regions",
    "logits_to_label_map",
    "regions_to_label_map",
]
