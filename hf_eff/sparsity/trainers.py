"""The two halves of SPDF as ``Trainer`` subclasses.

- :class:`SparsePretrainer` pre-trains with static random unstructured masks on the transformer-block matrices.
- :class:`DenseFinetuneTrainer` removes the masks and fine-tunes every weight, the zeroed ones starting from 0
  (or, with ``peft_config``, fine-tunes LoRA adapters on the frozen sparse model, the comparison users ask for).
"""

import contextlib
import json
import logging
import os
import types
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.distributed.fsdp import FSDPModule
from transformers import AutoModelForCausalLM, PreTrainedModel, Trainer
from transformers.trainer import TRAINING_ARGS_NAME

from hf_eff.data.external import hub_id_problem
from hf_eff.sparsity.checkpointing import MASKS_FILENAME, load_masks, save_masks
from hf_eff.sparsity.config import SparsityConfig
from hf_eff.sparsity.flops import training_flops
from hf_eff.sparsity.masks import StaticMaskManager, count_true, shard_like


logger = logging.getLogger(__name__)

_MANAGER_ATTRIBUTE = "_hf_eff_mask_manager"  # set on a model while a SparsePretrainer enforces its masks


def _save_pretrained_with_masks(model: PreTrainedModel, save_directory, *args: Any, **kwargs: Any):
    """``save_pretrained`` of a model that carries SPDF masks: the usual checkpoint, plus the masks beside it.

    Installed on the model instance by :func:`carry_masks`, so ``model.save_pretrained(dir)``, ``push_to_hub``
    (which saves through it) and ``Trainer.save_model`` all write ``sparsity_masks.safetensors``. The masks are
    the manager's global CPU copy: no collective, so rank 0 alone may call it.
    """
    result = type(model).save_pretrained(model, save_directory, *args, **kwargs)
    manager = getattr(model, _MANAGER_ATTRIBUTE, None)
    if manager is not None and kwargs.get("is_main_process", True):
        save_masks(
            Path(save_directory, MASKS_FILENAME), manager.state_dict(), manager.config, tokens_seen=manager.tokens_seen
        )
    return result


def carry_masks(model: PreTrainedModel, manager: StaticMaskManager) -> None:
    """Make ``model`` carry ``manager``'s masks: its ``save_pretrained`` / ``push_to_hub`` write them too.

    The masks stay out of the ``state_dict`` (no buffers: stock ``from_pretrained`` would report unexpected keys);
    the manager is a model attribute and ``save_pretrained`` is wrapped on this instance only.
    """
    setattr(model, _MANAGER_ATTRIBUTE, manager)
    model.save_pretrained = types.MethodType(_save_pretrained_with_masks, model)


class SparsePretrainer(Trainer):
    """A ``Trainer`` that keeps a fixed fraction of every transformer-block matrix at exactly zero.

    Masks are drawn when the trainer is built (see :class:`SparsityConfig`), identical on every rank, and enforced
    through every optimizer: masked gradients before clipping, masked optimizer state before the step, masked
    weights after it. The model carries its masks: ``save_model``, checkpoints, ``model.save_pretrained`` and
    ``push_to_hub`` write ``sparsity_masks.safetensors`` next to the weights (``save_model`` also a model card), and
    ``resume_from_checkpoint`` restores the masks from there instead of drawing new ones. The weights stay a plain
    dense-format checkpoint that ``AutoModelForCausalLM.from_pretrained`` loads.

    Distributed: DDP, and FSDP2 (``TrainingArguments(fsdp=True, fsdp_config={"fsdp_version": 2})``), where each
    mask is sharded like its parameter and checkpoints may stay sharded (the masks are saved beside them); a
    ``save_model`` called by the user consolidates the weights. DeepSpeed and FSDP1 are refused with a
    ``ValueError`` (their optimizers bypass the mask hooks): never a silently dense run.

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
        self._refuse_unsupported_backend()
        self.sparsity_config = sparsity_config
        # drawn after super().__init__, when the process group (if any) exists, so rank 0 can broadcast them
        self.mask_manager = StaticMaskManager.from_model(self.model, sparsity_config)
        carry_masks(self.model, self.mask_manager)
        self._seq_len: int | None = None
        self._last_report: dict[str, float] | None = None

    @property
    def tokens_seen(self) -> int:
        """Training tokens over all ranks (kept by the mask manager, so that it is saved with the masks)."""
        return self.mask_manager.tokens_seen

    @tokens_seen.setter
    def tokens_seen(self, value: int) -> None:
        self.mask_manager.tokens_seen = int(value)

    def _refuse_unsupported_backend(self) -> None:
        problem = unsupported_backend(self)
        if problem is not None:
            raise ValueError(f"SparsePretrainer: {problem}")

    def train(self, *args: Any, **kwargs: Any):
        self._refuse_unsupported_backend()  # also catches a backend switched on after __init__
        return super().train(*args, **kwargs)

    # --- the optimizer gets the masking hooks, whoever created it ----------------------------------------

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        optimizer = super().create_optimizer(model)
        self.mask_manager.attach_optimizer(optimizer)
        return optimizer

    def training_step(self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch=None) -> torch.Tensor:
        # accelerate's FSDP2 preparation replaces every parameter by a sharded DTensor: follow them (cheap no-op
        # when nothing changed)
        self.mask_manager.rebind(self.model)
        input_ids = inputs.get("input_ids")
        if isinstance(input_ids, torch.Tensor):
            # every rank sees a batch of the same shape (Trainer's samplers), so count once times world size
            self.tokens_seen += input_ids.numel() * self.args.world_size
            self._seq_len = input_ids.shape[-1]
        return super().training_step(model, inputs, num_items_in_batch)

    # --- accounting ---------------------------------------------------------------------------------------

    def flops_report(self) -> dict[str, float]:
        """Held sparsity and theoretical training FLOPs for the tokens seen so far. Under FSDP it is a collective:
        call it on every rank."""
        self.mask_manager.rebind(self.model)
        report = {"sparsity": self.mask_manager.held_sparsity()}
        if self._seq_len and self.tokens_seen:
            dense = training_flops(self.model.config, 0.0, self.tokens_seen, self._seq_len).dense
            # each masked weight skips one multiply-accumulate per token in the forward and two in the backward
            saved = 6.0 * self.mask_manager.num_masked * self.tokens_seen
            report.update(train_flops_saved=saved, train_flops_reduction=dense / (dense - saved))
        self._last_report = report
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

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Weights (dense format, zeros in place), ``sparsity_masks.safetensors`` and the SPDF model card.

        Under FSDP2 with a sharded state dict, checkpoints stay sharded with the masks beside them; a call by the
        user consolidates the weights into an ordinary ``from_pretrained`` checkpoint.
        """
        output_dir = str(output_dir if output_dir is not None else self.args.output_dir)
        plugin = self.accelerator.state.fsdp_plugin if self.is_fsdp_enabled else None
        sharded = plugin is not None and "SHARDED_STATE_DICT" in str(plugin.state_dict_type)
        consolidate = sharded and not _internal_call
        if consolidate:
            self._save_consolidated(output_dir)
        else:
            super().save_model(output_dir, _internal_call)  # weights through model.save_pretrained: masks too
        report = self.flops_report()  # on every rank: a collective when the weights are sharded
        if not self.args.should_save:
            return
        if sharded and not consolidate:  # sharded weights do not go through save_pretrained
            os.makedirs(output_dir, exist_ok=True)
            manager = self.mask_manager
            save_masks(Path(output_dir, MASKS_FILENAME), manager.state_dict(), manager.config, manager.tokens_seen)
        # Trainer pickles its arguments next to the weights and push_to_hub uploads the folder as it is; a shared
        # SPDF checkpoint holds safetensors only (Trainer never reads that file back)
        Path(output_dir, TRAINING_ARGS_NAME).unlink(missing_ok=True)
        self.sparse_model_card(report).save(os.path.join(output_dir, "README.md"))

    def _save_consolidated(self, output_dir: str) -> None:
        """Gather FSDP2 shards into one dense-format checkpoint (masks beside it) written by rank 0.

        transformers' ``save_pretrained`` inspects the sharded parameters of an FSDP2 module with collectives,
        which hangs when only rank 0 saves; the gathered weights are saved through a plain copy of the model
        built on the meta device instead (no memory besides the gathered tensors).
        """
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        # every rank takes part; rank 0 receives full CPU tensors
        state_dict = get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not self.args.should_save:
            return
        plain_class = next(
            c for c in type(self.model).__mro__ if issubclass(c, PreTrainedModel) and not issubclass(c, FSDPModule)
        )
        with torch.device("meta"):
            plain = plain_class(self.model.config)
        plain.load_state_dict(state_dict, assign=True)
        plain.tie_weights()
        plain.generation_config = self.model.generation_config
        carry_masks(plain, self.mask_manager)
        plain.save_pretrained(output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = os.path.join(resume_from_checkpoint, MASKS_FILENAME)
        if not os.path.isfile(path):
            raise ValueError(
                f"checkpoint {resume_from_checkpoint} has no {MASKS_FILENAME}; resuming sparse "
                "training would need new masks, which would zero trained weights"
            )
        masks, saved_config, tokens_seen = load_masks(path)
        if saved_config != self.sparsity_config:
            logger.warning(
                "resuming with the checkpoint's sparsity config %s (the trainer was given %s)",
                saved_config,
                self.sparsity_config,
            )
            self.sparsity_config = self.mask_manager.config = saved_config
        self.mask_manager.rebind(self.model)  # under FSDP2 this runs after sharding
        self.mask_manager.load_state_dict(masks)
        self.tokens_seen = tokens_seen

    def sparse_model_card(self, report: dict[str, float] | None = None, **card_data: Any):
        """The model card of this sparse checkpoint (template ``model_cards/spdf.md``). ``report``: a
        :meth:`flops_report` (computed if not given)."""
        from hf_eff.modelcard import render_model_card

        flops = report if report is not None else self.flops_report()
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
        """Used by ``push_to_hub`` (on rank 0 only, after a ``save_model`` on every rank): write this library's SPDF
        card instead of transformers' generic one."""
        if self.is_world_process_zero():
            os.makedirs(self.args.output_dir, exist_ok=True)
            # sharded weights need every rank to measure sparsity; reuse the figure save_model just measured
            report = self._last_report if self.mask_manager.is_sharded else None
            self.sparse_model_card(report).save(os.path.join(self.args.output_dir, "README.md"))


def _detach_manager(model: nn.Module) -> StaticMaskManager | None:
    manager = getattr(model, _MANAGER_ATTRIBUTE, None)
    if manager is not None:
        manager.remove()
        delattr(model, _MANAGER_ATTRIBUTE)
        model.__dict__.pop("save_pretrained", None)  # back to the class's own save
    return manager


def unsupported_backend(trainer: Trainer) -> str | None:
    """Why ``trainer``'s distributed backend would bypass the mask hooks, or ``None`` if it is supported.

    Read from the trainer's arguments and accelerator state only: DeepSpeed need not be installed to detect it.
    """
    state = trainer.accelerator.state
    plugin = getattr(state, "deepspeed_plugin", None)
    if getattr(trainer, "is_deepspeed_enabled", False) or trainer.args.deepspeed or plugin is not None:
        stage = getattr(plugin, "zero_stage", None)
        if stage is None:
            stage = _zero_stage(trainer.args.deepspeed)
        return (
            f"DeepSpeed (ZeRO stage {stage if stage is not None else '?'}) is not supported: its engine steps its "
            "own flattened, partitioned fp32 copies of weights and optimizer state, which the mask hooks never "
            "see, so masked weights would train densely. Use FSDP2 (fsdp_config={'fsdp_version': 2}) or DDP."
        )
    fsdp = getattr(state, "fsdp_plugin", None) if getattr(trainer, "is_fsdp_enabled", False) else None
    if fsdp is not None and getattr(fsdp, "fsdp_version", 1) != 2:
        return (
            "FSDP1 is not supported: it flattens parameters, which the mask hooks do not follow. "
            "Use FSDP2: fsdp_config={'fsdp_version': 2}."
        )
    return None


def _zero_stage(deepspeed_config: Any) -> int | None:
    """The ZeRO stage of a DeepSpeed config given as a dict or a JSON path (for the error message only)."""
    with contextlib.suppress(OSError, KeyError, TypeError, ValueError, AttributeError):
        if isinstance(deepspeed_config, (str, os.PathLike)):
            deepspeed_config = json.loads(Path(deepspeed_config).read_text())
        return int(deepspeed_config["zero_optimization"]["stage"])
    return None


def densify(
    model: PreTrainedModel | str | os.PathLike, masks: dict[str, torch.Tensor] | str | os.PathLike | None = None
) -> tuple[PreTrainedModel, dict[str, torch.Tensor] | None]:
    """The SPDF sparse-to-dense switch: return ``(dense model, masks it was trained with)``.

    ``model`` is a model or a checkpoint folder (loaded with ``AutoModelForCausalLM``). Hooks of a live
    :class:`SparsePretrainer` are detached. The masks come from ``masks`` (a dict or a safetensors path), else from
    the live trainer, else from ``sparsity_masks.safetensors`` in the checkpoint the model was loaded from (a folder,
    or a Hub repository: ``from_pretrained`` then ``densify`` finds them); ``None`` if none exists.
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
        masks = manager.state_dict()
    elif masks is None and (path := _checkpoint_masks(folder or model.name_or_path)) is not None:
        masks = load_masks(path)[0]
    return model, masks


def _checkpoint_masks(name_or_path: str | os.PathLike) -> str | None:
    """The masks file of the checkpoint a model was loaded from (a folder, or a Hub repository as
    ``from_pretrained`` fetched it), or ``None``."""
    if not name_or_path:
        return None
    if os.path.isdir(name_or_path):
        path = Path(name_or_path, MASKS_FILENAME)
        return str(path) if path.is_file() else None
    if hub_id_problem(str(name_or_path)):
        return None
    from transformers.utils import cached_file

    return cached_file(
        str(name_or_path),
        MASKS_FILENAME,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
    )


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
        # keep (owning module, attribute name): both survive PEFT wrapping (which renames parameters) and FSDP2
        # sharding (which replaces the parameter objects)
        self._previously_masked = [] if masks is None else [(*_owner(model, n), ~m.cpu()) for n, m in masks.items()]
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
        """Share of the weights masked during pre-training that are no longer exactly zero (under FSDP a
        collective: call it on every rank)."""
        if not self._previously_masked:
            return None
        total, moved = 0, 0
        for module, leaf, dropped in self._previously_masked:
            param = getattr(module, leaf)
            total += int(dropped.sum())
            moved += count_true(torch.logical_and(param != 0, shard_like(dropped, param)))
        return moved / max(total, 1)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if ("loss" in logs or "train_loss" in logs) and self._previously_masked:
            logs = {**logs, "revived_fraction": self.revived_fraction()}
        super().log(logs, start_time)


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    module_name, _, leaf = name.rpartition(".")
    return model.get_submodule(module_name), leaf
