"""Masks on disk: one safetensors file next to the weights of every sparse checkpoint.

Keys are the sparse parameters' names; values are ``uint8`` 0/1 tensors (safetensors has a bool type, but uint8
reads back everywhere). The header metadata holds the :class:`SparsityConfig` (JSON) and the number of training
tokens seen, which the FLOP accounting needs after a resume.
"""

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from hf_eff.sparsity.config import SparsityConfig


MASKS_FILENAME = "sparsity_masks.safetensors"


def save_masks(path: str | Path, masks: dict[str, torch.Tensor], config: SparsityConfig, tokens_seen: int = 0) -> None:
    tensors = {name: mask.to(device="cpu", dtype=torch.uint8).contiguous() for name, mask in masks.items()}
    metadata = {"format": "pt", "sparsity_config": config.to_json_string(), "tokens_seen": str(int(tokens_seen))}
    save_file(tensors, str(path), metadata=metadata)


def load_masks(path: str | Path) -> tuple[dict[str, torch.Tensor], SparsityConfig, int]:
    """Return ``(masks, config, tokens_seen)`` from a file written by :func:`save_masks`."""
    path = Path(path)
    if path.is_dir():
        path = path / MASKS_FILENAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no sparsity masks at {path} (expected a {MASKS_FILENAME} written by SparsePretrainer)"
        )
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        masks = {name: handle.get_tensor(name).to(torch.bool) for name in handle.keys()}  # noqa: SIM118
    if "sparsity_config" not in metadata:
        raise ValueError(f"{path} has no 'sparsity_config' metadata; it was not written by hf_eff")
    config = SparsityConfig.from_dict(json.loads(metadata["sparsity_config"]))
    return masks, config, int(metadata.get("tokens_seen", 0))
