"""Per-sample losses: one number per training example, whatever the task.

- classification: cross-entropy of logits ``(B, C)`` against labels ``(B,)``;
- causal LM: next-token cross-entropy (logits shifted against labels, as every ``*ForCausalLM`` does), averaged
  over the sample's tokens whose label is not ``-100``; a sample without any such token has loss 0;
- token classification: the same without the shift.

The mean over a sample's tokens (not the batch-wide token mean Trainer uses) is what makes a per-sample weight a
weight on that *example*, however long it is.
"""

import torch
from torch.nn import functional as F


IGNORE_INDEX = -100


def resolve_task(task: str, logits: torch.Tensor, labels: torch.Tensor, model: torch.nn.Module) -> str:
    if task != "auto":
        return task
    if logits.dim() == 2 and labels.dim() == 1:
        return "classification"
    if logits.dim() == 3 and labels.dim() == 2:
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        causal = type(model).__name__ in set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
        return "causal_lm" if causal else "token_classification"
    raise ValueError(
        f"cannot tell the task from logits of shape {tuple(logits.shape)} and labels of shape {tuple(labels.shape)}; "
        "set task='classification', 'causal_lm' or 'token_classification'"
    )


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor, task: str) -> torch.Tensor:
    """Loss of every sample of the batch, shape ``(B,)``."""
    if task == "classification":
        if logits.dim() != 2 or labels.dim() != 1:
            raise ValueError(
                f"classification needs logits (B, C) and labels (B,), got {tuple(logits.shape)} and {tuple(labels.shape)}"
            )
        return F.cross_entropy(logits.float(), labels, reduction="none")
    if task == "causal_lm":
        logits, labels = logits[:, :-1], labels[:, 1:]
    if logits.dim() != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(
            f"{task} needs logits (B, T, V) and labels (B, T), got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    token_losses = F.cross_entropy(
        logits.float().transpose(1, 2), labels, reduction="none", ignore_index=IGNORE_INDEX
    )  # (B, T)
    counts = (labels != IGNORE_INDEX).sum(dim=1)
    return token_losses.sum(dim=1) / counts.clamp(min=1)
