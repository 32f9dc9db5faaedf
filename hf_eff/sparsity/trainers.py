"""The two halves of SPDF as ``Trainer`` subclasses.

- :class:`SparsePretrainer` pre-trains with static random unstructured masks on the transformer-block matrices.
- :class:`DenseFinetuneTrainer` removes the masks and fine-tunes every weight, the zeroed ones starting from 0
  (or, with ``peft_config``, fine-tunes LoRA adapters on the frozen sparse model, the comparison users ask for).
"""

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel, Trainer
from transformers.trainer import TRAINING_ARGS_NAME

from hf_eff.data.external import hub_id_problem
from hf_eff.sparsity.checkpointing import MASKS_FILENAME, load_masks, save_masks
from hf_eff.sparsity.config import SparsityConfig
from hf_eff.sparsity.flops import training_flops
from hf_eff.sparsity.masks import StaticMaskManager


logger = logging.getLogger(__name__)

_MANAGER_ATTRIBUTE = "_hf_eff_mask_manager"  # set on a model while a SparsePretrainer enforces its masks


class SparsePretrainer(Trainer):
    """A ``Trainer`` that keeps a fixed fraction of every transformer-block matrix at exactly zero.

    Masks are drawn when the trainer is built (see :class:`SparsityConfig`), identical on every rank, and enforced
    through every optimizer: masked gradients before clipping, masked optimizer state before the step, masked
    weights after it. Checkpoints and ``save_model`` write ``sparsity_masks.safetensors`` next to the weights and a
    model card; ``resume_from_checkpoint`` restores the masks from there instead of drawing new ones. The weights
    stay a plain dense-format checkpoint that ``AutoModelForCausalLM.from_pretrained`` loads.

    Training logs gain ``sparsity`` (fraction of the sparse matrices that is exactly zero), ``train_flops_saved``
    and ``train_flops_reduction`` (theoretical, dense / sparse, for the tokens seen so far; see
    :func:`training_flops`).

    >>> trainer = SparsePretrainer(model=model, args=args, train_dataset=ds, sparsity_config=SparsityConfig(0.75))
    >>> trainer.train()
    >>> trainer.save_model("sparse-gpt")          # weights + sparsity_masks.safetensors + README.md
    """

    def __init__(
        self,
        model: PreTrainedModel | None = None,
        args=None,
        *trainer_args: Any,
        sparsity_config: SparsityConfig | None = None,
        **kwargs: Any,
    ):
        if sparsity_config is None:
            sparsity_config = SparsityConfig()
        if not isinstance(sparsity_config, SparsityConfig):
            raise TypeError(f"sparsity_config must be a SparsityConfig, got {type(sparsity_config).__name__}")
        if model is None:
            raise ValueError(
                "SparsePretrainer needs model= (model_init is not supported: masks are tied to one model)"
            )
        super().__init__(model, args, *trainer_args, **kwargs)
        self.sparsity_config = sparsity_config
        # drawn after super().__init__, when the process group (if any) exists, so rank 0 can broadcast them
        self.mask_manager = StaticMaskManager.from_model(self.model, sparsity_config)
        setattr(self.model, _MANAGER_ATTRIBUTE, self.mask_manager)
        self.tokens_seen = 0  # training tokens over all ranks, for the FLOP accounting
        self._seq_len: int | None = None

    # --- the optimizer gets the masking hooks, whoever created it ----------------------------------------

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        optimizer = super().create_optimizer(model)
        self.mask_manager.attach_optimizer(optimizer)
        return optimizer

    def training_step(self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch=None) -> torch.Tensor:
        input_ids = inputs.get("input_ids")
        if isinstance(input_ids, torch.Tensor):
            # every rank sees a batch of the same shape (Trainer's samplers), so count once times world size
            self.tokens_seen += input_ids.numel() * self.args.world_size
            self._seq_len = input_ids.shape[-1]
        return super().training_step(model, inputs, num_items_in_batch)

    # --- accounting ---------------------------------------------------------------------------------------

    def flops_report(self) -> dict[str, float]:
        """Held sparsity and theoretical training FLOPs for the tokens seen so far."""
        report = {"sparsity": self.mask_manager.held_sparsity()}
        if self._seq_len and self.tokens_seen:
            dense = training_flops(self.model.config, 0.0, self.tokens_seen, self._seq_len).dense
            # each masked weight skips one multiply-accumulate per token in the forward and two in the backward
            saved = 6.0 * self.mask_manager.num_masked * self.tokens_seen
            report.update(train_flops_saved=saved, train_flops_reduction=dense / (dense - saved))
        return report

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs or "train_loss" in logs:
            logs = {**logs, **self.flops_report()}
        super().log(logs, start_time)

    def densify(self) -> PreTrainedModel:
        """Detach every masking hook and return the model (masked weights are still exactly 0)."""
        _detach_manager(self.model)
        return self.model

    # --- checkpoints --------------------------------------------------------------------------------------

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        super()._save(output_dir, state_dict)
        if not self.args.should_save:
            return
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        # Trainer pickles its arguments next to the weights and push_to_hub uploads the folder as it is; a shared
        # SPDF checkpoint holds safetensors only (Trainer never reads that file back)
        Path(output_dir, TRAINING_ARGS_NAME).unlink(missing_ok=True)
        save_masks(
            os.path.join(output_dir, MASKS_FILENAME),
            self.mask_manager.state_dict(),
            self.sparsity_config,
            tokens_seen=self.tokens_seen,
        )
        self.sparse_model_card().save(os.path.join(output_dir, "README.md"))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = os.path.join(resume_from_checkpoint, MASKS_FILENAME)
        if not os.path.isfile(path):
            raise ValueError(
                f"checkpoint {resume_from_checkpoint} has no {MASKS_FILENAME}; resuming sparse "
                "training would need new masks, which would zero trained weights"
            )
        masks, saved_config, self.tokens_seen = load_masks(path)
        if saved_config != self.sparsity_config:
            logger.warning(
                "resuming with the checkpoint's sparsity config %s (the trainer was given %s)",
                saved_config,
                self.sparsity_config,
            )
            self.sparsity_config = saved_config
        self.mask_manager.load_state_dict(masks)

    def sparse_model_card(self, **card_data: Any):
        """The model card of this sparse checkpoint (template ``model_cards/spdf.md``)."""
        from hf_eff.modelcard import render_model_card

        flops = self.flops_report()
        data = {
            "tags": ["spdf", "sparse-pretraining", "text-generation"],
            "pipeline_tag": "text-generation",
            **card_data,
        }
        return render_model_card(
            "spdf",
            data,
            model_type=self.model.config.model_type,
            sparsity_config=self.sparsity_config,
            targets=sorted(self.mask_manager.params),
            num_masked=self.mask_manager.num_masked,
            num_weights=self.mask_manager.num_weights,
            held_sparsity=flops["sparsity"],
            tokens_seen=self.tokens_seen,
            flops_reduction=flops.get("train_flops_reduction"),
            flops_saved=flops.get("train_flops_saved"),
            masks_filename=MASKS_FILENAME,
        )

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """Used by ``push_to_hub``: write this library's SPDF card instead of transformers' generic one."""
        if self.is_world_process_zero():
            os.makedirs(self.args.output_dir, exist_ok=True)
            self.sparse_model_card().save(os.path.join(self.args.output_dir, "README.md"))


def _detach_manager(model: nn.Module) -> StaticMaskManager | None:
    manager = getattr(model, _MANAGER_ATTRIBUTE, None)
    if manager is not None:
        manager.remove()
        delattr(model, _MANAGER_ATTRIBUTE)
    return manager


def densify(
    model: PreTrainedModel | str | os.PathLike, masks: dict[str, torch.Tensor] | str | os.PathLike | None = None
) -> tuple[PreTrainedModel, dict[str, torch.Tensor] | None]:
    """The SPDF sparse-to-dense switch: return ``(dense model, masks it was trained with)``.

    ``model`` is a model or a checkpoint folder (loaded with ``AutoModelForCausalLM``). Hooks of a live
    :class:`SparsePretrainer` are detached. The masks come from ``masks`` (a dict or a safetensors path), else from
    the live trainer, else from ``sparsity_masks.safetensors`` in the checkpoint folder; ``None`` if none exists.
    Masked weights are not re-initialised: they start fine-tuning from exactly 0, as in the paper.
    """
    folder = None
    if isinstance(model, (str, os.PathLike)):
        folder = Path(model)
        if not folder.is_dir() and (problem := hub_id_problem(str(model))):
            raise ValueError(f"model={str(model)!r} is not a checkpoint folder: {problem}")
        model = AutoModelForCausalLM.from_pretrained(folder)
    if not isinstance(model, PreTrainedModel):
        raise TypeError(f"model must be a PreTrainedModel or a checkpoint folder, got {type(model).__name__}")
    manager = _detach_manager(model)
    if isinstance(masks, (str, os.PathLike)):
        masks = load_masks(masks)[0]
    elif masks is None and manager is not None:
        masks = {name: mask.clone() for name, mask in manager.masks.items()}
    elif masks is None and folder is not None and (folder / MASKS_FILENAME).is_file():
        masks = load_masks(folder)[0]
    return model, masks


class DenseFinetuneTrainer(Trainer):
    """Dense fine-tuning of a sparse pre-trained model (the "DF" of SPDF).

    ``model`` may be a checkpoint folder written by :class:`SparsePretrainer` or a model (even one still attached
    to a ``SparsePretrainer``): every mask and hook is removed and a fresh optimizer is built, so previously
    masked weights learn from exactly 0. A warm-up (``TrainingArguments(warmup_steps=...)``) is recommended: a
    fresh Adam moves dead weights as fast as trained ones from the first step.

    Training logs gain ``revived_fraction``: the share of previously masked weights that are no longer zero.

    With ``peft_config`` (e.g. ``peft.LoraConfig``) the sparse model is frozen and only adapters train, so the
    base stays sparse; use it to compare LoRA with dense fine-tuning of the same checkpoint.
    """

    def __init__(
        self,
        model: PreTrainedModel | str | os.PathLike | None = None,
        args=None,
        *trainer_args: Any,
        peft_config=None,
        sparse_masks: dict[str, torch.Tensor] | str | None = None,
        **kwargs: Any,
    ):
        if model is None:
            raise ValueError("DenseFinetuneTrainer needs model= (a sparse checkpoint folder or a model)")
        model, masks = densify(model, sparse_masks)
        named = dict(model.named_parameters())
        if masks is not None:
            unknown = sorted(set(masks) - set(named))
            if unknown:
                raise ValueError(f"sparse_masks name parameters the model does not have: {unknown[:4]}")
        # keep parameter objects, not names: they survive PEFT wrapping, which renames them
        self._previously_masked = (
            [] if masks is None else [(named[n], ~m.to(named[n].device)) for n, m in masks.items()]
        )
        if peft_config is not None:
            from peft import get_peft_model

            model = get_peft_model(model, peft_config)
        super().__init__(model, args, *trainer_args, **kwargs)
        if not self._previously_masked:
            logger.warning("DenseFinetuneTrainer: no sparsity masks found; revived_fraction will not be logged")
        if not self.args.warmup_steps:
            logger.warning("DenseFinetuneTrainer: warmup_steps=0; SPDF fine-tuning is steadier with a warm-up")

    @torch.no_grad()
    def revived_fraction(self) -> float | None:
        """Share of the weights masked during pre-training that are no longer exactly zero."""
        if not self._previously_masked:
            return None
        total = sum(int(dropped.sum()) for _, dropped in self._previously_masked)
        moved = sum(int(torch.count_nonzero(param[dropped])) for param, dropped in self._previously_masked)
        return moved / max(total, 1)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if ("loss" in logs or "train_loss" in logs) and self._previously_masked:
            logs = {**logs, "revived_fraction": self.revived_fraction()}
        super().log(logs, start_time)
