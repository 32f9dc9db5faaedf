"""Settings of the per-instance learning-rate callback and of the Data Parameters baseline.

Each dataclass owns its argument checks and is the JSON ``args`` of its callback's ``state()``: Trainer rebuilds a
restored callback with ``type(callback)(**state["args"])``, so every field is a JSON value.
"""

import math
from dataclasses import asdict, dataclass, fields
from typing import Any


META_OBJECTIVES = ("next_batch", "meta_set")
HYPERGRADIENT_SCALINGS = ("rms", "raw")
TASKS = ("auto", "classification", "causal_lm", "token_classification")


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _check_name(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty string, got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _check_optional_count(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")


class _JSONConfig:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass
class InstanceLRConfig(_JSONConfig):
    """How per-instance learning rates are parameterised and learned.

    Args:
        init_rate: initial rate of every instance (and class): the factor on that sample's share of the update.
        min_rate / max_rate: bounds of each learned rate (instance and class terms are clamped separately, in log
            space, after every update; the effective rate of a sample is their product). With the default
            ``max_rate = init_rate = 1`` rates only go down: rows that hurt the reference are slowed, the others
            train as with a plain Trainer (measured the most robust under label noise, ``hf-eff bench
            instance_lr``); raise ``max_rate`` to let helpful rows speed up too [hf_eff choice].
        rate_lr: step size of the rates' own updates, in log space. With ``hypergradient_scaling="rms"`` it is
            about the change of ``log rate`` per visit for a hypergradient of typical size.
        meta_objective: the reference loss whose decrease the rates are learned for: ``"next_batch"`` (the
            training loss of the next mini-batch, needs no clean data) or ``"meta_set"`` (the loss on a held-out
            or target-distribution set passed as ``meta_dataset``: the personalisation use).
        meta_batch_size: examples of ``meta_dataset`` per step (the same batch on every rank).
        horizon: the hypergradient of a row is averaged over the reference gradients of the next ``horizon``
            optimizer steps (``1``: the literal one-step rule). One step's inner product is noisy (a batch holds few
            rows like the one being judged); 16 steps separated flipped from clean labels far better on digits
            (AUROC ~0.92 vs ~0.75) at the cost of keeping ``horizon`` steps of output-layer data [hf_eff choice].
        hypergradient_scaling: ``"rms"`` divides hypergradients by a running root-mean-square of their size, so
            ``rate_lr`` means the same early and late in training and under SGD or Adam [hf_eff choice]; ``"raw"``
            uses the literal one-step rule ``-(lr / batch) <grad L_ref, grad l_i>``.
        per_class: learn a rate per class too (classification only), multiplied with the instance rate.
        update_rates: ``False`` freezes the rates at their current values (``init_rate`` for a fresh run).
        index_column: dataset column holding each row's stable global index (see ``add_sample_index``).
        label_column: the batch key of the labels.
        task: how the per-sample loss is formed: ``"classification"`` (logits ``(B, C)``), ``"causal_lm"``
            (shifted token cross-entropy, mean over each sample's non-ignored tokens), ``"token_classification"``
            (unshifted), or ``"auto"`` (decided from the logits' rank and the model class).
        head_module: dotted name of the output layer whose per-sample gradients are used (default: the model's
            output embeddings if it has them, else its last ``nn.Linear``).
        corrupt_column: optional boolean training-dataset column (e.g. ``"is_corrupt"``); when present, logs also
            report the mean rate of flagged and unflagged rows.
        num_samples: expected training-set size; checked against the dataset (``None``: taken from it).
        seed: seed of the meta-set sampling order.
    """

    init_rate: float = 1.0
    min_rate: float = 0.01
    max_rate: float = 1.0
    rate_lr: float = 0.5
    meta_objective: str = "next_batch"
    meta_batch_size: int = 128
    hypergradient_scaling: str = "rms"
    horizon: int = 16
    per_class: bool = False
    update_rates: bool = True
    index_column: str = "sample_idx"
    label_column: str = "labels"
    task: str = "auto"
    head_module: str | None = None
    corrupt_column: str | None = None
    num_samples: int | None = None
    seed: int = 0

    def __post_init__(self):
        for name in ("init_rate", "min_rate", "max_rate", "rate_lr"):
            _check_positive(name, getattr(self, name))
        if not self.min_rate <= self.init_rate <= self.max_rate:
            raise ValueError(
                f"init_rate must lie in [min_rate, max_rate] = [{self.min_rate}, {self.max_rate}], got {self.init_rate}"
            )
        _check_optional_count("horizon", self.horizon)
        _check_choice("meta_objective", self.meta_objective, META_OBJECTIVES)
        _check_choice("hypergradient_scaling", self.hypergradient_scaling, HYPERGRADIENT_SCALINGS)
        _check_choice("task", self.task, TASKS)
        _check_optional_count("meta_batch_size", self.meta_batch_size)
        _check_optional_count("num_samples", self.num_samples)
        for name in ("per_class", "update_rates"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        _check_name("index_column", self.index_column)
        _check_name("label_column", self.label_column)
        for name in ("head_module", "corrupt_column"):
            if getattr(self, name) is not None:
                _check_name(name, getattr(self, name))
        if self.per_class and self.task in ("causal_lm", "token_classification"):
            raise ValueError("per_class rates need one class per sample; they are not defined for task=" + self.task)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {self.seed!r}")


@dataclass
class DataParametersConfig(_JSONConfig):
    """Data Parameters (Saxena, Tuzel & DeCoste, NeurIPS 2019), as in ``apple/ml-data-parameters``.

    Each instance and/or class has a learnable log-temperature ``s``; logits are divided by
    ``sigma = exp(s_class[label]) + exp(s_instance)`` (or one of the two) before the loss, and the ``s`` are
    learned by gradient descent on that same loss with a sparse momentum SGD that moves only batch members.

    Args:
        learn_instance / learn_class: which temperatures to learn (both: the "joint curriculum").
        init_instance / init_class: initial temperatures (official default 1.0).
        lr_instance / lr_class: SGD learning rates (official default 0.1), momentum ``momentum`` (0.9).
        wd_instance / wd_class: ``0.5 * wd * sum(s**2)`` over mini-batch members, added to the loss (default 0).
        min_temperature / max_temperature: clamp of every temperature ([1/20, 20] in the official CIFAR setup).
        index_column / label_column / task / corrupt_column / num_samples: as in :class:`InstanceLRConfig`.
    """

    learn_instance: bool = True
    learn_class: bool = False
    init_instance: float = 1.0
    init_class: float = 1.0
    lr_instance: float = 0.1
    lr_class: float = 0.1
    momentum: float = 0.9
    wd_instance: float = 0.0
    wd_class: float = 0.0
    min_temperature: float = 1 / 20
    max_temperature: float = 20.0
    index_column: str = "sample_idx"
    label_column: str = "labels"
    task: str = "auto"
    corrupt_column: str | None = None
    num_samples: int | None = None

    def __post_init__(self):
        for name in ("learn_instance", "learn_class"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if not (self.learn_instance or self.learn_class):
            raise ValueError("at least one of learn_instance / learn_class must be True")
        for name in ("init_instance", "init_class", "lr_instance", "lr_class", "min_temperature", "max_temperature"):
            _check_positive(name, getattr(self, name))
        for name in ("wd_instance", "wd_class"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        if isinstance(self.momentum, bool) or not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.min_temperature > self.max_temperature:
            raise ValueError("min_temperature must not exceed max_temperature")
        _check_choice("task", self.task, TASKS)
        _check_name("index_column", self.index_column)
        _check_name("label_column", self.label_column)
        if self.corrupt_column is not None:
            _check_name("corrupt_column", self.corrupt_column)
        _check_optional_count("num_samples", self.num_samples)
        if self.learn_class and self.task in ("causal_lm", "token_classification"):
            raise ValueError("class temperatures need one class per sample; not defined for task=" + self.task)
