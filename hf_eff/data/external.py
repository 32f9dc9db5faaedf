"""Load a user's own data: a local folder or file, or a Hugging Face dataset id.

This is the only place in hf_eff that may reach a hub, and only when the user names a dataset id themselves.
"""

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import datasets


_FILE_BUILDERS = {".txt": "text", ".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def looks_like_a_path(name: str) -> bool:
    """Whether ``name`` was meant as a local path rather than a Hub id: it starts like one (``./``, ``/``, ``~``)
    or ends in a data-file extension."""
    return name.startswith((".", "/", "~", os.sep)) or Path(name).suffix in _FILE_BUILDERS


def hub_id_problem(name: str) -> str | None:
    """Why ``name``, which is no local path, cannot be loaded from the Hub, decided without waiting on the
    network's retries (tens of seconds when there is no network); ``None`` when it is worth asking the Hub."""
    from huggingface_hub import constants
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if looks_like_a_path(name):
        return "no such file or folder"
    try:
        validate_repo_id(name)
    except HFValidationError:
        return "no such file or folder, and not a valid Hub id"
    offline = constants.HF_HUB_OFFLINE or os.environ.get("HF_DATASETS_OFFLINE", "").upper() in (
        "1",
        "ON",
        "YES",
        "TRUE",
    )
    if offline:
        return None  # the libraries answer at once from the local cache
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError as error:
        return f"no such file or folder, and the Hub ({host}) cannot be reached ({error}); set HF_HUB_OFFLINE=1 to use cached copies"
    return None


def load_external_dataset(name: str, argument: str = "name") -> datasets.DatasetDict:
    """``name`` is a folder written by ``save_to_disk``, a data file or folder of data files, or a Hub dataset id."""
    path = Path(name).expanduser()
    if path.exists():
        if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists()):
            loaded = datasets.load_from_disk(str(path))
        else:
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in _FILE_BUILDERS)
            suffixes = {p.suffix for p in files}
            if len(suffixes) != 1 or next(iter(suffixes)) not in _FILE_BUILDERS:
                raise ValueError(
                    f"{argument}={name!r}: expected a save_to_disk folder or data files with one of the "
                    f"extensions {sorted(_FILE_BUILDERS)}, found {sorted(suffixes) or 'no data files'}"
                )
            loaded = datasets.load_dataset(_FILE_BUILDERS[files[0].suffix], data_files=[str(p) for p in files])
    elif problem := hub_id_problem(name):
        raise ValueError(f"{argument}={name!r} is neither a built-in dataset nor an existing local path: {problem}")
    else:
        try:
            loaded = datasets.load_dataset(name)
        except Exception as error:  # offline, unknown id, private repo: one clear message
            raise ValueError(
                f"{argument}={name!r} is neither a built-in dataset, an existing local path, nor a loadable "
                f"Hugging Face dataset id ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
            ) from error
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded


def ensure_split(
    data: datasets.DatasetDict, split: str, fraction: float, seed: int, stratify_by_column: str | None = None
) -> datasets.DatasetDict:
    """Carve ``split`` out of ``train`` (a seeded ``fraction``) when the dataset does not have it."""
    aliases = {"validation": ("validation", "valid", "dev", "val"), "test": ("test", "testing")}
    for alias in aliases.get(split, (split,)):
        if alias in data:
            out = dict(data)
            out[split] = out.pop(alias)
            return datasets.DatasetDict(out)
    if "train" not in data:
        raise ValueError(f"dataset has no 'train' split to carve a {split!r} split from; splits: {sorted(data)}")
    parts = data["train"].train_test_split(test_size=fraction, seed=seed, stratify_by_column=stratify_by_column)
    return datasets.DatasetDict({**data, "train": parts["train"], split: parts["test"]})
