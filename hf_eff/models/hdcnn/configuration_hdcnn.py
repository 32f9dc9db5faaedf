"""Configuration of HD-CNN (Yan et al., "HD-CNN: Hierarchical Deep Convolutional Neural Networks for Large Scale
Visual Recognition", ICCV 2015): a building-block network, where to split it, and the category hierarchy.

The hierarchy (``coarse_members``, ``coarse_targets``) lives in the config, so a saved or pushed checkpoint
reproduces the probabilistic averaging exactly without any side file.
"""

from typing import Any

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec


AGGREGATIONS = ("multi", "disjoint")


class HDCNNConfig(PreTrainedConfig):
    r"""
    HD-CNN: shared lower layers of a building-block CNN, a coarse component (a copy of the rear layers with a
    full C-way classifier whose probabilities are summed into K coarse-category probabilities), and K fine
    components (copies of the rear layers with a compact classifier over the classes of their coarse category).
    The prediction is ``p(j|x) = sum_k B_k(x) p_k(j|x)``; ``logits`` are ``log p(j|x)``.

    Args:
        backbone_config (`dict` or `PreTrainedConfig`, *optional*):
            The building block: a staged convolutional transformers model given by its config (ResNet, ConvNeXt,
            ConvNeXtV2, RegNet, ...: a stem ``embedder``/``embeddings`` and ``encoder.stages``). Nothing is
            downloaded. `None` uses the built-in small CNN below.
        num_shared_stages (`int`, defaults to 1): stages of the building block (after its stem) shared by all
            components; the remaining stages are copied into the coarse and every fine component.
        num_channels (`int`, defaults to 3): image channels (small CNN only; a backbone config has its own).
        cnn_channels (`list[int]`): widths of the small CNN's stages; each stage is ``cnn_convs_per_stage``
            conv3x3-BatchNorm-ReLU layers, and every stage but the last ends with 2x2 max pooling.
        cnn_convs_per_stage (`int`, defaults to 2): convolutions per small-CNN stage.
        classifier_dropout (`float`, defaults to 0.0): dropout before each component's classifier.
        coarse_members (`list[list[int]]`, *optional*): the (possibly overlapping) fine classes S_k of every
            coarse category k. `None` means one coarse category holding every class: the flat building block.
        coarse_targets (`list[float]`, *optional*): target frequency t_k of each coarse category for the
            consistency term; `None` uses ``|S_k| / sum_k' |S_k'|`` (the official values for balanced classes).
        coarse_names (`list[str]`, *optional*): a display name per coarse category.
        consistency_lambda (`float`, defaults to 5.0): weight of the coarse category consistency term
            ``lambda/2 * sum_k (t_k - mean_i B_k(x_i))^2`` (official configs: 5).
        aggregation (`str`, defaults to `"multi"`): ``"multi"`` renormalises the summed coarse probabilities
            (overlapping categories, official ``Fine2MultiCoarseProb``); ``"disjoint"`` requires a partition and
            uses the sums as they are (``Fine2CoarseProb``).
        conditional_threshold (`float`, *optional*): at inference, run only the fine components whose coarse
            probability is at least this value (the most probable one always runs).
        conditional_top_k (`int`, *optional*): at inference, run only the ``k`` most probable fine components.
            Both unset (the default): every component runs. Conditional execution never applies in training.
        pq_modules (`list[str]`, *optional*): names of the layers replaced by product-quantised layers (set by
            :func:`~hf_eff.models.hdcnn.product_quantize_`, so that the checkpoint rebuilds them).
        pq_num_centers (`int`, defaults to 64), pq_segment_length (`int`, defaults to 2): the quantisation.

    Example:

    ```python
    >>> from hf_eff import HDCNNConfig, HDCNNForImageClassification
    >>> config = HDCNNConfig(num_channels=1, num_labels=4, coarse_members=[[0, 1], [1, 2, 3]])
    >>> model = HDCNNForImageClassification(config)
    ```
    """

    model_type = "hf_eff_hdcnn"
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(config_class=AutoConfig, model_type="resnet", optional=True),
    }

    backbone_config: dict | PreTrainedConfig | None = None
    num_shared_stages: int = 1
    num_channels: int = 3
    cnn_channels: list[int] | tuple[int, ...] = (32, 64, 128)
    cnn_convs_per_stage: int = 2
    classifier_dropout: float = 0.0
    coarse_members: list[list[int]] | tuple | None = None
    coarse_targets: list[float] | tuple[float, ...] | None = None
    coarse_names: list[str] | tuple[str, ...] | None = None
    consistency_lambda: float = 5.0
    aggregation: str = "multi"
    conditional_threshold: float | None = None
    conditional_top_k: int | None = None
    pq_modules: list[str] | tuple[str, ...] | None = None
    pq_num_centers: int = 64
    pq_segment_length: int = 2

    def __post_init__(self, **kwargs: Any):
        self.cnn_channels = list(self.cnn_channels)
        super().__post_init__(**kwargs)  # sets num_labels / id2label and builds backbone_config
        if self.coarse_members is None:
            self.coarse_members = [list(range(self.num_labels))]
        # local (compact) label i of category k is the i-th smallest class of S_k
        self.coarse_members = [sorted(int(j) for j in members) for members in self.coarse_members]
        if self.coarse_names is not None:
            self.coarse_names = [str(name) for name in self.coarse_names]
        if self.pq_modules is not None:
            self.pq_modules = list(self.pq_modules)
        self._validate()
        if self.coarse_targets is None:
            total = sum(len(m) for m in self.coarse_members)
            self.coarse_targets = [len(m) / total for m in self.coarse_members]
        self.coarse_targets = [float(t) for t in self.coarse_targets]

    @property
    def num_coarse(self) -> int:
        return len(self.coarse_members)

    @property
    def num_stages(self) -> int:
        if self.backbone_config is None:
            return len(self.cnn_channels)
        sizes = getattr(self.backbone_config, "hidden_sizes", None)
        if not sizes:
            raise ValueError(
                f"backbone_config of type {self.backbone_config.model_type!r} is not a staged CNN (no hidden_sizes): "
                "HD-CNN needs a stem and `encoder.stages` (e.g. ResNet, ConvNeXt, RegNet)"
            )
        return len(sizes)

    def _validate(self) -> None:
        num_fine = self.num_labels
        members = self.coarse_members
        if not members:
            raise ValueError("coarse_members must list at least one coarse category")
        for k, group in enumerate(members):
            if not group:
                raise ValueError(f"coarse_members[{k}] is empty: every coarse category needs at least one fine class")
            outside = [j for j in group if not 0 <= j < num_fine]
            if outside:
                raise ValueError(f"coarse_members[{k}] holds {outside}, outside the {num_fine} classes (num_labels)")
            if len(set(group)) != len(group):
                raise ValueError(f"coarse_members[{k}] lists a class twice: {group}")
        covered = {j for group in members for j in group}
        missing = sorted(set(range(num_fine)) - covered)
        if missing:
            raise ValueError(f"fine classes {missing} are in no coarse category (coarse_members must cover all)")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        if self.aggregation == "disjoint" and sum(len(g) for g in members) != num_fine:
            raise ValueError('aggregation="disjoint" needs coarse_members to be a partition (no class in two groups)')
        if self.coarse_targets is not None:
            if len(self.coarse_targets) != len(members):
                raise ValueError(
                    f"coarse_targets has {len(self.coarse_targets)} entries for {len(members)} coarse categories"
                )
            if any(t < 0 for t in self.coarse_targets) or abs(sum(self.coarse_targets) - 1.0) > 1e-4:
                raise ValueError(f"coarse_targets must be non-negative and sum to 1, got {self.coarse_targets}")
        if self.coarse_names is not None and len(self.coarse_names) != len(members):
            raise ValueError(f"coarse_names has {len(self.coarse_names)} names for {len(members)} coarse categories")
        if not 0 <= self.num_shared_stages < self.num_stages:
            raise ValueError(
                f"num_shared_stages must be in [0, {self.num_stages - 1}] (at least one stage stays in the "
                f"components), got {self.num_shared_stages}"
            )
        if self.backbone_config is None and (not self.cnn_channels or min(self.cnn_channels) < 1):
            raise ValueError(f"cnn_channels must be positive stage widths, got {self.cnn_channels}")
        if self.cnn_convs_per_stage < 1:
            raise ValueError(f"cnn_convs_per_stage must be >= 1, got {self.cnn_convs_per_stage}")
        if not 0.0 <= self.classifier_dropout < 1.0:
            raise ValueError(f"classifier_dropout must be in [0, 1), got {self.classifier_dropout}")
        if self.consistency_lambda < 0:
            raise ValueError(f"consistency_lambda must be >= 0, got {self.consistency_lambda}")
        if self.conditional_threshold is not None and not 0.0 <= self.conditional_threshold <= 1.0:
            raise ValueError(f"conditional_threshold must be in [0, 1] or None, got {self.conditional_threshold}")
        if self.conditional_top_k is not None and not 1 <= self.conditional_top_k <= len(members):
            raise ValueError(f"conditional_top_k must be in [1, {len(members)}] or None, got {self.conditional_top_k}")
        if self.pq_num_centers < 2 or self.pq_num_centers > 256:
            raise ValueError(f"pq_num_centers must be in [2, 256] (uint8 codes), got {self.pq_num_centers}")
        if self.pq_segment_length < 1:
            raise ValueError(f"pq_segment_length must be >= 1, got {self.pq_segment_length}")


__all__ = ["HDCNNConfig"]
