"""CRAFTMaps as a transformers model: a seeded compact random feature map plus a one-pass ECOC ridge head.

The random map's randomness lives in persistent buffers and the ridge solution in an ``nn.Linear``, so
``save_pretrained`` / ``push_to_hub`` store a trained classifier as safetensors and ``from_pretrained`` reproduces its
predictions exactly. Training is :meth:`CraftMapsForClassification.fit`: one streaming pass that accumulates the
normal equations (summed across processes under ``torch.distributed``), then one Cholesky solve.
"""

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from hf_eff.distributed import all_gather_object, all_reduce_, is_distributed
from hf_eff.modelcard import ModelCardMixin
from hf_eff.random_features import CraftMap, NormalEquations, PolynomialKernel, RandomFeatureMap, code_logits
from hf_eff.random_features.ridge import iter_batches, make_code_matrix

from .configuration_craftmaps import CraftMapsConfig


@dataclass
class CraftMapsClassifierOutput(ModelOutput):
    """
    loss: 0.5 * mean squared distance between the code predictions and the labels' codewords (the ridge data term).
    logits: per class, -||code_predictions - codeword||^2 / 2; the argmax is the nearest codeword.
    code_predictions: the ridge outputs W^T z + b, one per code bit.
    features: the random features z (n, n_components).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    code_predictions: torch.FloatTensor | None = None
    features: torch.FloatTensor | None = None


class CraftMapsPreTrainedModel(PreTrainedModel):
    config: CraftMapsConfig
    config_class = CraftMapsConfig
    base_model_prefix = "craftmaps"
    main_input_name = "features"
    accepts_loss_kwargs = False
    _no_split_modules = ["CraftMap"]

    def _init_weights(self, module: nn.Module) -> None:
        # the random maps are a pure function of the seed: redraw them (copy_ skips tensors loaded from a checkpoint)
        if isinstance(module, RandomFeatureMap):
            for name, value in module.sample_buffers().items():
                init.copy_(getattr(module, name), value)
        elif isinstance(module, nn.Linear):  # an unfitted ridge head predicts 0 for every code bit
            init.zeros_(module.weight)
            init.zeros_(module.bias)
        if isinstance(module, CraftMapsForClassification):
            init.copy_(module.code_matrix, module.draw_code_matrix())


class CraftMapsForClassification(ModelCardMixin, CraftMapsPreTrainedModel):
    """Polynomial-kernel classifier: l2-normalise, CRAFTMap to ``n_components`` features, ridge onto output codes."""

    model_card_template = "craftmaps"

    def __init__(self, config: CraftMapsConfig):
        super().__init__(config)
        kernel = PolynomialKernel(config.degree, float(config.gamma), float(config.coef0))
        self.feature_map = CraftMap(
            config.num_features,
            config.n_components,
            kernel,
            n_components_up=config.n_components_up,
            up=config.up,
            down=config.down,
            h01=config.h01,
            seed=config.seed,
        )
        code_matrix = self.draw_code_matrix()
        self.register_buffer("code_matrix", code_matrix.float(), persistent=True)
        self.classifier = nn.Linear(config.n_components, code_matrix.shape[1])
        self.post_init()

    def draw_code_matrix(self) -> torch.Tensor:
        config = self.config
        return make_code_matrix(config.num_labels, config.code, config.code_size, seed=config.seed).float()

    def flatten_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """(n, d) or (n, C, H, W) / (n, H, W) inputs -> (n, num_features), l2-normalised if configured."""
        if not isinstance(inputs, torch.Tensor):
            raise TypeError(f"features must be a torch.Tensor, got {type(inputs).__name__}")
        if not inputs.is_floating_point():
            inputs = inputs.float()
        rows = inputs.reshape(inputs.shape[0], -1) if inputs.ndim > 1 else inputs.reshape(1, -1)
        if rows.shape[1] != self.config.num_features:
            raise ValueError(
                f"expected {self.config.num_features} features per sample (config.num_features), got inputs of "
                f"shape {tuple(inputs.shape)}"
            )
        if self.config.normalize == "l2":
            rows = F.normalize(rows, dim=1)
        return rows.to(self.classifier.weight.dtype)

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """The random features z(x) of a batch (the kernel approximation itself)."""
        return self.feature_map(self.flatten_inputs(inputs))

    def forward(
        self,
        features: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> CraftMapsClassifierOutput | tuple:
        r"""
        features (`torch.Tensor` of shape `(batch_size, num_features)`): feature vectors.
        pixel_values (`torch.Tensor` of shape `(batch_size, C, H, W)`): images, flattened; use one of the two.
        labels (`torch.LongTensor` of shape `(batch_size,)`): class indices; gives the ridge data loss.
        """
        if (features is None) == (pixel_values is None):
            raise ValueError("pass exactly one of features or pixel_values")
        z = self.embed(features if features is not None else pixel_values)
        code_predictions = self.classifier(z)
        logits = code_logits(code_predictions, self.code_matrix)
        loss = None
        if labels is not None:
            targets = self.code_matrix.to(code_predictions.dtype)[labels.to(code_predictions.device).long()]
            loss = 0.5 * (code_predictions - targets).square().sum(dim=1).mean()
        output = CraftMapsClassifierOutput(loss=loss, logits=logits, code_predictions=code_predictions, features=z)
        return output if return_dict is not False else output.to_tuple()

    @torch.no_grad()
    def fit(
        self,
        data: Any,
        batch_size: int = 1024,
        features_column: str | None = None,
        label_column: str = "label",
    ) -> "CraftMapsForClassification":
        """Train the ridge head in one pass over ``data``; returns the model.

        ``data``: a ``(features, labels)`` pair, a ``datasets.Dataset`` (features column "features" or
        "pixel_values", labels in ``label_column``) or any iterable of ``(features, labels)`` batches, e.g. a
        stream that never fits in memory. Under ``torch.distributed`` every process passes its own shard and the
        normal equations are summed across processes before the solve, so all ranks end with the same weights.

        Labels are class indices or class names. Names are looked up in ``config.label2id`` when the config names
        its classes; otherwise they become the classes in sorted order (``config.id2label``), decided after the
        pass from the names every process saw. A ``datasets`` ``ClassLabel`` column gives its names to a config
        that has none, so predictions and the model card say "3", not "LABEL_3".
        """
        self._adopt_class_label_names(data, label_column)
        num_labels = self.config.num_labels
        labels_to_ids = _LabelIds(self.config)
        # one pass accumulates per-class feature sums (one-hot targets); they are projected onto the codewords after
        # the pass, when class names seen only as strings have their final indices
        equations = NormalEquations(self.config.n_components, num_labels, self.config.fit_intercept)
        for inputs, labels in iter_batches(data, batch_size, features_column, label_column):
            ids = labels_to_ids(labels)
            z = self.embed(torch.as_tensor(inputs).to(self.device))
            equations.update(z, F.one_hot(ids, num_labels).double())
        if new_classes := labels_to_ids.finish(equations):
            self.config.id2label = dict(enumerate(new_classes))
            self.config.label2id = {name: index for index, name in self.config.id2label.items()}
        _all_reduce_(equations)
        if equations.n_samples == 0:
            raise ValueError("fit() got no training samples: data is empty")
        equations.map_targets(self.code_matrix.double().cpu())
        weights, bias = equations.solve(float(self.config.alpha))
        self.classifier.weight.copy_(weights.T.to(self.classifier.weight))
        self.classifier.bias.copy_(bias.to(self.classifier.bias))
        self.num_fit_samples = equations.n_samples
        return self

    def _adopt_class_label_names(self, data: Any, label_column: str) -> None:
        """Give the config the names of a ``datasets`` ``ClassLabel`` column, unless it names its classes itself."""
        feature = (getattr(data, "features", None) or {}).get(label_column)
        names = getattr(feature, "names", None)
        if not names:
            return
        if len(names) != self.config.num_labels:
            raise ValueError(
                f"the dataset's {label_column!r} column has {len(names)} classes {names[:10]}, but the model has "
                f"config.num_labels={self.config.num_labels}: build it with num_labels={len(names)}"
            )
        if _has_default_names(self.config):
            self.config.id2label = dict(enumerate(names))
            self.config.label2id = {name: index for index, name in enumerate(names)}

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor) -> torch.Tensor:
        """Class indices for a batch of feature vectors or images."""
        return self.forward(features=inputs).logits.argmax(dim=-1)

    def model_card_data(self) -> dict[str, Any]:
        # no Hub task takes its inputs (feature vectors or images without an image processor): no pipeline_tag; the
        # tag names hf_eff's own task
        return {
            "tags": ["craftmaps", "random-features", "kernel-methods", "craftmaps-classification"],
            "pipeline_tag": None,
        }

    def model_card_variables(self) -> dict[str, Any]:
        return {
            **super().model_card_variables(),
            "labels": list(self.config.id2label.values()),
            "map_description": self.feature_map.describe(),
            "num_fit_samples": getattr(self, "num_fit_samples", None),
        }


def _has_default_names(config: CraftMapsConfig) -> bool:
    """Whether the config's class names are transformers' placeholders LABEL_0, LABEL_1, ..."""
    return all(name == f"LABEL_{index}" for index, name in config.id2label.items())


class _LabelIds:
    """Turns each batch of labels (indices or names) into class indices for :meth:`CraftMapsForClassification.fit`.

    Names the config does not define get provisional indices in order of appearance; :meth:`finish` sorts the
    names every process saw and reorders the accumulated per-class sums to match.
    """

    def __init__(self, config: CraftMapsConfig):
        self.num_labels = config.num_labels
        self.label2id = None if _has_default_names(config) else {name: i for i, name in config.id2label.items()}
        self.seen: dict[str, int] = {}  # provisional indices of names the config does not define
        self.kinds: set[str] = set()

    def __call__(self, labels: torch.Tensor | list) -> torch.Tensor:
        if isinstance(labels, torch.Tensor):
            self.kinds.add("indices")
            ids = _class_indices(labels, self.num_labels)
        else:
            self.kinds.add("names")
            ids = torch.tensor([self._name_id(name) for name in labels], dtype=torch.long)
        if len(self.kinds) > 1:
            raise ValueError("labels must be all class indices or all class names, got both")
        return ids

    def _name_id(self, name: Any) -> int:
        if not isinstance(name, str):
            raise ValueError(f"labels must be class indices or class names (str), got {name!r}")
        if self.label2id is not None:
            if name not in self.label2id:
                raise ValueError(
                    f"label {name!r} is not a class of this model (config.id2label names: {sorted(self.label2id)})"
                )
            return self.label2id[name]
        if name not in self.seen:
            if len(self.seen) == self.num_labels:
                raise ValueError(
                    f"labels name more than config.num_labels={self.num_labels} classes: {sorted(self.seen)} and {name!r}"
                )
            self.seen[name] = len(self.seen)
        return self.seen[name]

    def finish(self, equations: NormalEquations) -> list[str] | None:
        """The sorted class names, once every process's names are known, with ``equations`` reordered to them; or
        ``None`` when the labels needed no new names. A collective under ``torch.distributed``."""
        everyone = all_gather_object((list(self.seen), sorted(self.kinds)))
        if len({kind for _, kinds in everyone for kind in kinds}) > 1:
            raise ValueError("labels must be all class indices or all class names, got both (on different processes)")
        names = sorted({name for seen, _ in everyone for name in seen})
        if not names:
            return None
        if len(names) != self.num_labels:
            raise ValueError(
                f"labels name {len(names)} classes {names[:10]}, but config.num_labels={self.num_labels}: build the "
                f"model with num_labels={len(names)} (or name the classes in config.id2label)"
            )
        final = {name: index for index, name in enumerate(names)}
        reorder = torch.zeros(self.num_labels, self.num_labels, dtype=torch.float64)
        for name, provisional in self.seen.items():
            reorder[provisional, final[name]] = 1.0
        equations.map_targets(reorder)  # provisional indices this process never used hold zero sums
        return names


def _class_indices(labels: torch.Tensor, num_labels: int) -> torch.Tensor:
    """``labels`` as a flat ``LongTensor`` of class indices, or a ValueError saying what was expected."""
    labels = labels.reshape(-1)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(
            f"labels must be integer class indices in [0, {num_labels - 1}] or class names, got dtype {labels.dtype}"
        )
    labels = labels.long()
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_labels):
        raise ValueError(
            f"labels must be in [0, {num_labels - 1}] (config.num_labels={num_labels}), got values in "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    return labels


def _all_reduce_(equations: NormalEquations) -> None:
    """Sum the normal equations over all processes (no-op outside a multi-process group)."""
    if not is_distributed():
        return
    count = torch.tensor([float(equations.n_samples)], dtype=torch.float64)
    for tensor in (equations.gram, equations.cross, count):
        all_reduce_(tensor, op="sum")
    equations.n_samples = int(count.item())


__all__ = ["CraftMapsClassifierOutput", "CraftMapsForClassification", "CraftMapsPreTrainedModel"]
