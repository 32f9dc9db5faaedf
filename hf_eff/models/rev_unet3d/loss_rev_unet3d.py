"""The segmentation loss the model computes itself: soft Dice (+ optional BCE / cross-entropy).

transformers picks ``loss_function`` from the class name, and a ``...ForSemanticSegmentation`` would get the 2D
bilinear-upsampling loss, so the 3D U-Net brings its own. Dice is the non-squared soft Dice of the reference design
(``specs/rev_unet3d.md`` §2.3), summed over the batch and the volume per output channel, then averaged over
channels: an empty region in one volume does not get a Dice of its own.
"""

import torch
from torch.nn import functional as F

from .labels_rev_unet3d import label_map_to_classes, label_map_to_regions


def soft_dice_loss(probabilities: torch.Tensor, targets: torch.Tensor, smooth: float = 1e-5) -> torch.Tensor:
    """``mean_c (1 - (2 sum(p g) + eps) / (sum(p) + sum(g) + eps))`` over channels ``c`` of ``(batch, c, ...)``."""
    dims = (0, *range(2, probabilities.ndim))
    intersection = (probabilities * targets).sum(dims)
    total = probabilities.sum(dims) + targets.sum(dims)
    return (1 - (2 * intersection + smooth) / (total + smooth)).mean()


def segmentation_loss(config, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The model's training loss for an (already validated) label map ``labels`` of shape ``(batch, D, H, W)``."""
    logits = logits.float()  # the loss runs in fp32 even under autocast
    if config.label_mode == "regions":
        targets = label_map_to_regions(labels, config.region_labels)
        loss = soft_dice_loss(torch.sigmoid(logits), targets, config.dice_smooth)
        if config.cross_entropy_weight:
            loss = loss + config.cross_entropy_weight * F.binary_cross_entropy_with_logits(logits, targets)
        return loss
    classes = label_map_to_classes(labels, config.label_values)
    one_hot = F.one_hot(classes, logits.shape[1]).movedim(-1, 1).float()
    loss = soft_dice_loss(torch.softmax(logits, dim=1), one_hot, config.dice_smooth)
    if config.cross_entropy_weight:
        loss = loss + config.cross_entropy_weight * F.cross_entropy(logits, classes)
    return loss


__all__ = ["segmentation_loss", "soft_dice_loss"]
