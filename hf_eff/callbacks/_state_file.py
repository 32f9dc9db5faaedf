"""Nested training state (dicts, lists, tuples, numbers, strings and tensors) in one safetensors file.

Optimizer and scheduler ``state_dict()``s mix tensors with Python values under integer keys; ``torch.save`` would
pickle them, which hf_eff never does. Here the tensors go into the safetensors body and everything else into its
header metadata as tagged JSON that rebuilds the exact Python values (Python floats survive JSON bit for bit,
tuples stay tuples, integer keys stay integers), so a state saved and loaded again is the same state.

A file that cannot be read back (cut short by a crash during the write, overwritten, not written by hf_eff) raises
one ``ValueError`` naming it; callers never start afresh silently.
"""

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file


__all__ = ["load_state_file", "read_safetensors", "save_state_file"]

STATE_KEY = "hf_eff_state"  # metadata entry holding the tagged JSON
_TAGS = ("__tensor__", "__tuple__", "__dict__")


def _encode(value: Any, path: str, tensors: dict[str, torch.Tensor], seen: set[int]) -> Any:
    if isinstance(value, torch.Tensor):
        key = path or "tensor"
        if key in tensors:
            raise ValueError(f"two tensors of the state map to the same name {key!r}")
        tensor = value.detach().to("cpu")
        if tensor.numel() and tensor.untyped_storage().data_ptr() in seen:
            tensor = tensor.clone()  # safetensors refuses tensors sharing memory (e.g. tied embeddings)
        tensor = tensor.contiguous()
        if tensor.numel():
            seen.add(tensor.untyped_storage().data_ptr())
        tensors[key] = tensor
        return {"__tensor__": key}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(item, f"{path}/{i}", tensors, seen) for i, item in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(item, f"{path}/{i}", tensors, seen) for i, item in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(key, str) for key in value) and not set(value) & set(_TAGS):
            return {key: _encode(item, f"{path}/{key}", tensors, seen) for key, item in value.items()}
        return {"__dict__": [[key, _encode(item, f"{path}/{key}", tensors, seen)] for key, item in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} at {path or '/'!r} in a state file")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(item, tensors) for item in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__tuple__" in value:
            return tuple(_decode(item, tensors) for item in value["__tuple__"])
        if "__dict__" in value:
            return {_decode(key, tensors): _decode(item, tensors) for key, item in value["__dict__"]}
        return {key: _decode(item, tensors) for key, item in value.items()}
    return value


def save_state_file(path: str | Path, state: Any, metadata: dict[str, str] | None = None) -> None:
    """Write ``state`` to ``path`` (through a temporary file and a rename, so that a crash during the write never
    leaves a half-written file under the final name). ``metadata``: extra header entries (strings)."""
    tensors: dict[str, torch.Tensor] = {}
    encoded = _encode(state, "", tensors, set())
    header = {**(metadata or {}), "format": "pt", STATE_KEY: json.dumps(encoded)}
    save_safetensors_atomically(tensors, path, header)


def save_safetensors_atomically(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]) -> None:
    """``safetensors.torch.save_file`` through a temporary name and a rename: a crash during the write never leaves
    a half-written file under the final name (the resume then fails naming the missing file instead)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    save_file(tensors, str(partial), metadata=metadata)
    os.replace(partial, path)


def read_safetensors(path: str | Path, what: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors and the header metadata of a safetensors file, or a ``ValueError`` naming the file (and
    ``what`` it should hold) if it is truncated or corrupted; ``FileNotFoundError`` if it is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except Exception as error:  # safetensors raises its own error types, which do not name the file
        raise ValueError(
            f"{path} ({what}) is truncated or corrupted and cannot be read ({type(error).__name__}: {error}); "
            "resume from an earlier checkpoint"
        ) from error
    return tensors, metadata


def load_state_file(path: str | Path, what: str = "state file") -> tuple[Any, dict[str, str]]:
    """Read back what :func:`save_state_file` wrote: ``(state, metadata)``. Errors name the file."""
    tensors, metadata = read_safetensors(path, what)
    try:
        state = _decode(json.loads(metadata[STATE_KEY]), tensors)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path} ({what}) is corrupted or was not written by hf_eff ({error!r})") from error
    return state, metadata
