"""HD-CNN: a building-block CNN embedded in a two-level category hierarchy (Yan et al., ICCV 2015).

``shared`` (the stem and first ``num_shared_stages`` stages of the building block) feeds a coarse component and
K fine components, each a copy of the remaining stages plus a classifier:

- the coarse component classifies into all C classes; its probabilities are summed over each coarse category's
  classes S_k and, for overlapping categories, renormalised: B_k(x) (official ``Fine2MultiCoarseProb``);
- fine component k has a compact classifier over S_k only (local label i = the i-th smallest class of S_k);
- the prediction is the probabilistic average ``p(j|x) = sum_k B_k(x) p_k(j|x)``, computed in log space, and
  ``logits`` are ``log p(j|x)`` (argmax and top-k metrics work unchanged; never apply a second softmax);
- the loss is the NLL of ``p`` plus the coarse category consistency term
  ``lambda/2 * sum_k (t_k - mean_i B_k(x_i))^2`` over the (per-device) micro-batch, as in the official
  ``MultinomialLogisticSparsityLoss``. Gradient accumulation does not enlarge the batch this term sees.

Conditional execution (inference only, off by default): B(x) is computed first, and each fine component runs only
on the samples that selected it (top-k and/or threshold on B_k); B is renormalised over the executed components.
Shapes then depend on the data, so it is skipped in training and breaks CUDA graphs / static compilation.

With a single coarse category (``coarse_members=None``) no coarse component is built and the model *is* the flat
building-block classifier; the recipe trains it first and initialises HD-CNN from it
(:meth:`HDCNNForImageClassification.from_building_block`).
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from hf_eff.modelcard import ModelCardMixin

from .configuration_hdcnn import HDCNNConfig
from .quantization_hdcnn import ProductQuantized, replace_module


@dataclass
class HDCNNImageClassifierOutput(ModelOutput):
    """
    Args:
        loss: NLL of the averaged prediction plus the consistency term (or the branch pre-training loss).
        logits: ``log p(j|x)``, shape ``(batch, num_labels)``.
        coarse_probs: B_k(x), shape ``(batch, num_coarse)`` (before any conditional renormalisation).
        executed_branches: with conditional execution, which fine components ran on which sample (bool,
            ``(batch, num_coarse)``).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    coarse_probs: torch.FloatTensor | None = None
    executed_branches: torch.BoolTensor | None = None


class HDCNNConvStage(nn.Sequential):
    """The small CNN's stage: ``num_convs`` x (conv3x3 - BatchNorm - ReLU), then 2x2 max pooling if ``pool``."""

    def __init__(self, in_channels: int, out_channels: int, num_convs: int, pool: bool):
        layers = []
        for i in range(num_convs):
            layers += [
                nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
        if pool:
            layers.append(nn.MaxPool2d(2))
        super().__init__(*layers)


def building_block_parts(config: HDCNNConfig) -> tuple[nn.Module, list[nn.Module], nn.Module, int]:
    """A freshly initialised building block as (stem, stages, norm after pooling, final width).

    Every component gets its own fresh copy, so that no two components start from the same random weights.
    """
    if config.backbone_config is None:
        widths = [config.num_channels, *config.cnn_channels]
        stages = [
            HDCNNConvStage(widths[i], widths[i + 1], config.cnn_convs_per_stage, pool=i < len(widths) - 2)
            for i in range(len(widths) - 1)
        ]
        return nn.Identity(), stages, nn.Identity(), widths[-1]
    base = AutoModel.from_config(config.backbone_config)
    stem = getattr(base, "embedder", None) or getattr(base, "embeddings", None)
    stages = getattr(getattr(base, "encoder", None), "stages", None)
    if stem is None or not isinstance(stages, nn.ModuleList):
        raise ValueError(
            f"backbone_config of type {config.backbone_config.model_type!r} is not a staged CNN: HD-CNN needs a "
            "base model with a stem (`embedder`/`embeddings`) and `encoder.stages` (e.g. ResNet, ConvNeXt, RegNet)"
        )
    norm = getattr(base, "layernorm", None) or nn.Identity()  # ConvNeXt normalises the pooled features
    return stem, list(stages), norm, config.backbone_config.hidden_sizes[-1]


class HDCNNSharedLayers(nn.Module):
    """The stem and the first ``num_shared_stages`` stages of the building block."""

    def __init__(self, config: HDCNNConfig):
        super().__init__()
        stem, stages, _, _ = building_block_parts(config)
        self.stem = stem
        self.stages = nn.Sequential(*stages[: config.num_shared_stages])

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(pixel_values))


class HDCNNComponent(nn.Module):
    """A copy of the rear stages, global average pooling, (norm,) dropout and a classifier over ``num_outputs``."""

    def __init__(self, config: HDCNNConfig, num_outputs: int):
        super().__init__()
        _, stages, norm, width = building_block_parts(config)
        self.stages = nn.Sequential(*stages[config.num_shared_stages :])
        self.norm = norm
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(width, num_outputs)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        pooled = self.stages(hidden).mean(dim=(-2, -1))
        return self.classifier(self.dropout(self.norm(pooled)))


def membership_matrix(config: HDCNNConfig) -> torch.Tensor:
    """(num_coarse, num_labels) bool: class j belongs to coarse category k."""
    matrix = torch.zeros(config.num_coarse, config.num_labels, dtype=torch.bool)
    for k, members in enumerate(config.coarse_members):
        matrix[k, members] = True
    return matrix


class HDCNNPreTrainedModel(ModelCardMixin, PreTrainedModel):
    config: HDCNNConfig
    config_class = HDCNNConfig
    base_model_prefix = "hdcnn"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    accepts_loss_kwargs = False  # the loss is a batch mean plus a batch-level regulariser (HF_CONVENTIONS §0.4)
    supports_gradient_checkpointing = False
    model_card_template = "hdcnn"

    def _init_weights(self, module: nn.Module) -> None:
        """Kaiming-normal (fan_out) convs, unit norms, PyTorch-default linear layers (a CNN, not a transformer:
        the library default N(0, 0.02) would starve ReLU nets), and the membership buffer rebuilt from the config
        (it is not saved, so ``from_pretrained`` on the meta device must recreate it here)."""
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
            if module.weight is not None:
                init.ones_(module.weight)
                init.zeros_(module.bias)
            if isinstance(module, nn.BatchNorm2d) and module.running_mean is not None:
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
                init.zeros_(module.num_batches_tracked)
        elif isinstance(module, nn.Linear):
            bound = 1.0 / module.in_features**0.5
            init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(getattr(module, "layer_scale_parameter", None), nn.Parameter):  # ConvNeXt layers
            init.constant_(module.layer_scale_parameter, self.config.backbone_config.layer_scale_init_value)
        if isinstance(module, HDCNNForImageClassification):
            init.copy_(module.coarse_membership, membership_matrix(module.config))

    def model_card_data(self) -> dict:
        return {
            "tags": ["hdcnn", "hierarchical-classification", "image-classification"],
            "pipeline_tag": "image-classification",
        }

    def model_card_variables(self) -> dict:
        names = self.config.id2label
        groups = [", ".join(str(names.get(j, j)) for j in members) for members in self.config.coarse_members]
        return {
            **super().model_card_variables(),
            "num_parameters": sum(p.numel() for p in self.parameters()),
            "coarse_groups": groups,
            "building_block": "small CNN"
            if self.config.backbone_config is None
            else self.config.backbone_config.model_type,
        }


class HDCNNForImageClassification(HDCNNPreTrainedModel):
    """HD-CNN image classifier; see the module docstring. ``coarse_members=None`` gives the flat building block."""

    def __init__(self, config: HDCNNConfig):
        super().__init__(config)
        self.shared = HDCNNSharedLayers(config)
        self.coarse = HDCNNComponent(config, config.num_labels) if config.num_coarse > 1 else None
        self.fine = nn.ModuleList(HDCNNComponent(config, len(members)) for members in config.coarse_members)
        self.register_buffer("coarse_membership", membership_matrix(config), persistent=False)
        for name in config.pq_modules or []:  # rebuild product-quantised layers; their codes come from the weights
            replace_module(
                self, name, ProductQuantized(self.get_submodule(name), config.pq_num_centers, config.pq_segment_length)
            )
        self.post_init()

    @classmethod
    def from_building_block(cls, block: "HDCNNForImageClassification", **hierarchy) -> "HDCNNForImageClassification":
        """An HD-CNN initialised from a trained flat building block (official recipe, [V]):

        - the shared layers and the coarse component are copies of the block (the coarse component *is* the
          block's rear layers and classifier);
        - every fine component copies the block's rear layers; its compact classifier takes the block's
          classifier rows of S_k (the official code re-initialises it; starting from the rows is a [D] choice:
          for a disjoint hierarchy the untrained HD-CNN then predicts exactly like the block).

        ``hierarchy``: config fields to set, typically ``coarse_members``, ``coarse_targets``, ``coarse_names``
        (e.g. ``**build_category_hierarchy(...).config_kwargs()``).
        """
        if block.config.num_coarse != 1:
            raise ValueError("from_building_block expects a flat building block (a single coarse category)")
        if block.config.pq_modules:
            raise ValueError("from_building_block expects an unquantised building block")
        fields = {**block.config.to_dict(), "coarse_targets": None, "coarse_names": None, **hierarchy}
        config = HDCNNConfig.from_dict(fields)
        model = cls(config).to(block.device)
        rear = block.fine[0]
        model.shared.load_state_dict(block.shared.state_dict())
        if model.coarse is not None:
            model.coarse.load_state_dict(rear.state_dict())
        for branch, members in zip(model.fine, config.coarse_members):
            state = {k: v for k, v in rear.state_dict().items() if not k.startswith("classifier.")}
            branch.load_state_dict(state, strict=False)
            with torch.no_grad():
                branch.classifier.weight.copy_(rear.classifier.weight[members])
                branch.classifier.bias.copy_(rear.classifier.bias[members])
        return model

    def coarse_log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """log B_k(x), shape (batch, num_coarse), from the shared features."""
        if self.coarse is None:
            return hidden.new_zeros(hidden.shape[0], 1)
        log_fine = F.log_softmax(self.coarse(hidden), dim=-1)
        log_mask = torch.zeros_like(self.coarse_membership, dtype=log_fine.dtype).masked_fill(
            ~self.coarse_membership, float("-inf")
        )
        log_summed = torch.logsumexp(log_fine[:, None, :] + log_mask, dim=-1)  # log sum_{j in S_k} p^B(j|x)
        if self.config.aggregation == "disjoint":
            return log_summed
        return log_summed - torch.logsumexp(log_summed, dim=-1, keepdim=True)

    def select_branches(
        self, coarse_probs: torch.Tensor, top_k: int | None = None, threshold: float | None = None
    ) -> torch.Tensor:
        """Which fine components run on which sample: the ``top_k`` most probable and/or those with B_k >=
        ``threshold`` (both given: both conditions); the most probable component always runs."""
        if top_k is not None and not 1 <= top_k <= coarse_probs.shape[1]:
            raise ValueError(f"conditional_top_k must be in [1, {coarse_probs.shape[1]}], got {top_k}")
        selected = torch.ones_like(coarse_probs, dtype=torch.bool)
        ranked = coarse_probs.topk(top_k or 1, dim=1).indices  # one tie-break for "top-k" and "the best"
        if top_k is not None:
            selected &= torch.zeros_like(selected).scatter_(1, ranked, True)
        if threshold is not None:
            selected &= coarse_probs >= threshold
        return selected.scatter_(1, ranked[:, :1], True)

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.LongTensor | None = None,
        conditional_top_k: int | None = None,
        conditional_threshold: float | None = None,
        branch_pretraining: bool = False,
        return_dict: bool | None = None,
    ) -> HDCNNImageClassifierOutput | tuple:
        r"""
        conditional_top_k, conditional_threshold: override the config's conditional execution for this call
            (inference only: in training every component runs).
        branch_pretraining: the recipe's second stage: shared layers fixed (no gradient, BatchNorm statistics
            frozen), each fine component trained with cross-entropy on the samples whose label is in its S_k
            (compact labels); ``labels`` are required and no prediction is returned.
        """
        if pixel_values.ndim != 4:
            raise ValueError(f"pixel_values must be (batch, channels, height, width), got {tuple(pixel_values.shape)}")
        if branch_pretraining:
            return self._branch_pretraining_loss(pixel_values, labels)
        hidden = self.shared(pixel_values)
        log_b = self.coarse_log_probs(hidden)
        top_k = conditional_top_k if conditional_top_k is not None else self.config.conditional_top_k
        threshold = conditional_threshold if conditional_threshold is not None else self.config.conditional_threshold
        executed = None
        if not self.training and (top_k is not None or threshold is not None):
            executed = self.select_branches(log_b.exp(), top_k, threshold)
        logits = self._average(hidden, log_b, executed)
        loss = None
        if labels is not None:
            loss = F.nll_loss(logits, labels) + self.consistency_loss(log_b.exp())
        output = HDCNNImageClassifierOutput(
            loss=loss, logits=logits, coarse_probs=log_b.exp(), executed_branches=executed
        )
        return output if return_dict is not False else output.to_tuple()

    def consistency_loss(self, coarse_probs: torch.Tensor) -> torch.Tensor:
        """``lambda/2 * sum_k (t_k - mean_i B_k(x_i))^2`` over this micro-batch."""
        targets = torch.tensor(self.config.coarse_targets, dtype=coarse_probs.dtype, device=coarse_probs.device)
        return 0.5 * self.config.consistency_lambda * (targets - coarse_probs.mean(dim=0)).pow(2).sum()

    def _members(self, k: int) -> torch.Tensor:
        return self.coarse_membership[k].nonzero().squeeze(1)

    def _average(self, hidden: torch.Tensor, log_b: torch.Tensor, executed: torch.Tensor | None) -> torch.Tensor:
        """``log sum_k B_k p_k(j|x)``; with ``executed``, only those (sample, component) pairs, B renormalised."""
        batch = hidden.shape[0]
        if executed is not None:
            log_b = log_b.masked_fill(~executed, float("-inf"))
            log_b = log_b - torch.logsumexp(log_b, dim=-1, keepdim=True)
        terms = log_b.new_full((batch, self.config.num_coarse, self.config.num_labels), float("-inf"))
        for k, branch in enumerate(self.fine):
            members = self._members(k)
            if executed is None:
                terms[:, k, members] = log_b[:, k, None] + F.log_softmax(branch(hidden), dim=-1)
                continue
            rows = executed[:, k].nonzero().squeeze(1)
            if rows.numel():
                log_p = F.log_softmax(branch(hidden.index_select(0, rows)), dim=-1)
                terms[rows[:, None], k, members[None, :]] = log_b[rows, k, None] + log_p
        return torch.logsumexp(terms, dim=1)

    def _branch_pretraining_loss(self, pixel_values: torch.Tensor, labels: torch.Tensor | None):
        if labels is None:
            raise ValueError("branch_pretraining=True needs labels")
        was_training = self.shared.training
        self.shared.eval()
        with torch.no_grad():
            hidden = self.shared(pixel_values)
        self.shared.train(was_training)
        loss = hidden.new_zeros(())
        for k, branch in enumerate(self.fine):
            local = torch.full((self.config.num_labels,), -1, dtype=torch.long, device=labels.device)
            members = self._members(k)
            local[members] = torch.arange(members.numel(), device=labels.device)
            rows = (local[labels] >= 0).nonzero().squeeze(1)
            if rows.numel():
                loss = loss + F.cross_entropy(branch(hidden.index_select(0, rows)), local[labels[rows]])
        return HDCNNImageClassifierOutput(loss=loss)


__all__ = ["HDCNNForImageClassification", "HDCNNImageClassifierOutput", "HDCNNPreTrainedModel"]
