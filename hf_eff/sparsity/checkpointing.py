"""Masks on disk: one safetensors file next to the weights of every sparse checkpoint.

Keys are the sparse parameters' names; values are ``uint8`` 0/1 tensors (safetensors has a bool type, but uint8
reads back everywhere). The header metadata holds the :class:`SparsityConfig` (JSON) and the number of training
tokens seen, which the FLOP accounting needs after a resume. A file cut short or damaged raises one ``ValueError``
naming it: resuming with fresh masks would zero trained weights.
"""

import json
from pathlib import Path

import torch

from hf_eff.callbacks._state_file import read_safetensors, save_safetensors_atomically
from hf_eff.sparsity.config import SparsityConfig


MASKS_FILENAME = "sparsity_masks.safetensors"


def save_masks(path: str | Path, masks: dict[str, torch.Tensor], config: SparsityConfig, tokens_seen: int = 0) -> None:
    """Write the masks through a temporary file and a rename: a crash mid-write leaves no half-written file."""
    tensors = {name: mask.to(device="cpu", dtype=torch.uint8).contiguous() for name, mask in masks.items()}
    metadata = {"format": "pt", "sparsity_config": config.to_json_string(), "tokens_seen": str(int(tokens_seen))}
    save_safetensors_atomically(tensors, path, metadata)


def load_masks(path: str | Path) -> tuple[dict[str, torch.Tensor], SparsityConfig, int]:
    """Return ``(masks, config, tokens_seen)`` from a file written by :func:`save_masks`."""
    path = Path(path)
    if path.is_dir():
        path = path / MASKS_FILENAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no sparsity masks at {path} (expected a {MASKS_FILENAME} written by SparsePretrainer)"
        )
    tensors, metadata = read_safetensors(path, what="sparsity masks")  # a damaged file raises, naming it
    if "sparsity_config" not in metadata:
        raise ValueError(f"{path} has no 'sparsity_config' metadata; it was not written by hf_eff")
    try:
        config = SparsityConfig.from_dict(json.loads(metadata["sparsity_config"]))
        tokens_seen = int(metadata.get("tokens_seen", 0))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path} (sparsity masks) has corrupted metadata ({error})") from error
    if not tensors:
        raise ValueError(f"{path} (sparsity masks) holds no mask")
    return {name: mask.to(torch.bool) for name, mask in tensors.items()}, config, tokens_seen
