"""Offline text: a pre-training corpus, a different-domain corpus and a downstream generation task.

Built-in names (all from docstrings of installed code, see :mod:`hf_eff.data.docstrings`):

- ``"python-stdlib-docs"``: the Python standard library's docstrings (~1.4 MB of English technical prose).
- ``"python-scientific-docs"``: numpy, scipy and scikit-learn docstrings (~8.5 MB): a different domain.
- ``"docstring-summaries"`` (:func:`load_text_task`): signature -> first sentence of its docstring, from the
  scientific packages: a small data-to-text task in the spirit of the SPDF paper's downstream tasks.

Splits are made by *module* (a seeded hash), so no module's text is in two splits. Any other name is treated as a
local path or a Hugging Face dataset id (see :func:`hf_eff.data.external.load_external_dataset`).
"""

import functools
import hashlib

import datasets

from hf_eff.data.docstrings import Docstring, collect_docstrings, first_sentence
from hf_eff.data.external import ensure_split, load_external_dataset


TEXT_CORPORA = {
    "python-stdlib-docs": ("stdlib",),
    "python-scientific-docs": ("numpy", "scipy", "sklearn"),
}
TEXT_TASKS = {"docstring-summaries": ("numpy", "scipy", "sklearn")}


@functools.lru_cache(maxsize=4)
def _docstrings(sources: tuple[str, ...]) -> tuple[Docstring, ...]:
    return tuple(collect_docstrings(list(sources)))


def _unit_interval(module: str, seed: int) -> float:
    """A stable pseudo-random number in [0, 1) per (module, seed): the split assignment."""
    digest = hashlib.sha256(f"{seed}:{module}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _check_fraction(value: float, argument: str) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{argument} must be in (0, 1), got {value!r}")


def _split_by_module(records: list[dict], fractions: dict[str, float], seed: int) -> datasets.DatasetDict:
    """Assign each record to a split by its module's hash; ``fractions`` gives the non-train splits."""
    buckets: dict[str, list[dict]] = {"train": [], **{name: [] for name in fractions}}
    for record in records:
        u, edge = _unit_interval(record["module"], seed), 0.0
        split = "train"
        for name, fraction in fractions.items():
            edge += fraction
            if u < edge:
                split = name
                break
        buckets[split].append(record)
    return datasets.DatasetDict({name: datasets.Dataset.from_list(rows) for name, rows in buckets.items()})


def load_text_corpus(
    name: str = "python-stdlib-docs",
    *,
    seed: int = 0,
    validation_fraction: float = 0.05,
    max_chars: int | None = None,
    text_column: str = "text",
) -> datasets.DatasetDict:
    """A text corpus with ``train`` and ``validation`` splits and a ``text`` column.

    Args:
        name: a built-in corpus (``"python-stdlib-docs"``, ``"python-scientific-docs"``), a local path, or a
            Hugging Face dataset id.
        seed: decides which modules (or, for external data without a validation split, rows) go to validation.
        validation_fraction: share of modules held out for validation.
        max_chars: keep train documents only until this many characters (validation is never cut).
        text_column: for external data, the column holding the text (renamed to ``text``).
    """
    _check_fraction(validation_fraction, "validation_fraction")
    if max_chars is not None and max_chars < 1:
        raise ValueError(f"max_chars must be a positive integer or None, got {max_chars!r}")
    if name in TEXT_CORPORA:
        records = [
            {"text": d.text, "module": d.module, "name": d.name}
            for d in _docstrings(TEXT_CORPORA[name])
            if len(d.text) >= 40  # one-liners like "Return self." carry little language
        ]
        data = _split_by_module(records, {"validation": validation_fraction}, seed)
    else:
        data = ensure_split(load_external_dataset(name), "validation", validation_fraction, seed)
        if text_column not in data["train"].column_names:
            raise ValueError(
                f"text_column={text_column!r} is not a column of {name!r}; columns: {data['train'].column_names}"
            )
        if text_column != "text":
            data = data.rename_column(text_column, "text")
    if max_chars is not None:
        lengths = [len(t) for t in data["train"]["text"]]
        total, keep = 0, 0
        while keep < len(lengths) and total < max_chars:
            total += lengths[keep]
            keep += 1
        data["train"] = data["train"].select(range(keep))
    return data


def load_text_task(
    name: str = "docstring-summaries",
    *,
    seed: int = 0,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> datasets.DatasetDict:
    """A text-generation task with ``train``/``validation``/``test`` splits and ``prompt``, ``completion``, ``text``.

    ``"docstring-summaries"``: ``prompt`` is a Python signature such as ``"LinearRegression.fit(X, y,
    sample_weight=None)"``, ``completion`` the first sentence of its docstring, ``text`` = ``prompt + "\\n" +
    completion``. External datasets must provide ``prompt`` and ``completion`` columns.
    """
    _check_fraction(validation_fraction, "validation_fraction")
    _check_fraction(test_fraction, "test_fraction")
    if validation_fraction + test_fraction >= 1:
        raise ValueError("validation_fraction + test_fraction must be below 1")
    if name in TEXT_TASKS:
        seen: set[tuple[str, str]] = set()
        records = []
        for d in _docstrings(TEXT_TASKS[name]):
            summary = first_sentence(d.text)
            if not d.signature or len(summary) < 15 or len(summary) > 300 or (d.signature, summary) in seen:
                continue
            seen.add((d.signature, summary))
            records.append(
                {"prompt": d.signature, "completion": summary, "text": f"{d.signature}\n{summary}", "module": d.module}
            )
        return _split_by_module(records, {"validation": validation_fraction, "test": test_fraction}, seed)
    else:
        data = load_external_dataset(name)
        data = ensure_split(data, "test", test_fraction, seed)
        data = ensure_split(data, "validation", validation_fraction, seed)
        missing = {"prompt", "completion"} - set(data["train"].column_names)
        if missing:
            raise ValueError(f"{name!r} lacks the columns {sorted(missing)} a text task needs")
    return data.map(lambda row: {"text": f"{row['prompt']}\n{row['completion']}"})
