"""SWAP's own checkpoint files, in safetensors: one model replica per worker and its optimizer state.

Trainer checkpoints hold the main process's model and optimizer only, so in phase 2 every worker also writes
``swap/worker-<w>.safetensors`` (its weights and buffers) and ``swap/worker-<w>-optimizer.safetensors`` (the
tensors of its optimizer state; the non-tensor entries and parameter groups go into the file's JSON metadata).
Sequential runs add the phase-1 starting point and the running sum of finished workers. Reading a file that is
missing, cut short or damaged raises one error naming it: phase 2 never restarts from other weights silently.
"""

import json
import os
from typing import Any

import torch
from torch import nn

from hf_eff.callbacks._state_file import read_safetensors, save_safetensors_atomically


SWAP_DIR = "swap"


def swap_path(checkpoint: str, name: str) -> str:
    return os.path.join(checkpoint, SWAP_DIR, f"{name}.safetensors")


def save_tensors(tensors: dict[str, torch.Tensor], path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_safetensors_atomically({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, path, {"format": "pt"})


def load_tensors(path: str, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    tensors, _ = read_safetensors(path, "a SWAP replica written by SWAPTrainer")
    return {k: v.to(device) for k, v in tensors.items()}


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def load_model_tensors(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    missing = set(state) - set(tensors)
    if missing:
        raise ValueError(f"SWAP replica lacks {len(missing)} model tensors, e.g. {sorted(missing)[:3]}")
    for name, tensor in state.items():
        tensor.copy_(tensors[name])


def save_optimizer_state(state_dict: dict[str, Any], path: str) -> None:
    """Write an optimizer ``state_dict`` (tensor entries as tensors, the rest as JSON metadata)."""
    tensors, scalars = {}, {}
    for index, entries in state_dict["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    os.makedirs(os.path.dirname(path), exist_ok=True)
    metadata = {"format": "pt", "scalars": json.dumps(scalars), "param_groups": json.dumps(state_dict["param_groups"])}
    # safetensors refuses an empty dict of tensors only in old versions; a marker keeps the file valid everywhere
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()} or {"_empty": torch.zeros(0)}
    save_safetensors_atomically(tensors, path, metadata)


def load_optimizer_state(path: str) -> dict[str, Any]:
    """The optimizer ``state_dict`` written by :func:`save_optimizer_state`."""
    tensors, metadata = read_safetensors(path, "a SWAP optimizer state written by SWAPTrainer")
    tensors.pop("_empty", None)
    try:
        state: dict[int, dict[str, Any]] = {}
        for key, value in [*tensors.items(), *json.loads(metadata["scalars"]).items()]:
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        return {"state": state, "param_groups": json.loads(metadata["param_groups"])}
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{path} (a SWAP optimizer state) is corrupted or was not written by hf_eff ({error!r})"
        ) from error
