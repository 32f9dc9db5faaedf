"""The end-to-end SPDF run: sparse pre-training of a GPT from a config, dense fine-tuning on a downstream text
dataset, evaluation. ``hf-eff spdf``, ``examples/spdf/run_spdf.py`` and the benchmark all use these functions.

Text is packed into fixed-length blocks of the offline byte-level tokenizer (:mod:`hf_eff.data.tokenization`)
unless a tokenizer is given. Dataset names are those of :func:`hf_eff.data.load_text_corpus` (a corpus with a
``text`` column), :func:`hf_eff.data.load_text_task` (its ``text`` column, prompt + completion), a local path or a
Hugging Face dataset id.
"""

import math
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from datasets import Dataset, DatasetDict
from transformers import (
    GPT2Config,
    PreTrainedModel,
    Trainer,
    TrainingArguments,
    default_data_collator,
)

from hf_eff.sparsity.config import SparsityConfig
from hf_eff.sparsity.flops import training_flops
from hf_eff.sparsity.trainers import DenseFinetuneTrainer, SparsePretrainer


@dataclass
class TrainSchedule:
    """Optimizer settings of one phase; defaults follow the ModelZoo GPT-3 sparse pre-training recipe:
    AdamW (0.9, 0.95), weight decay 0.1, clip 1.0, linear warm-up then cosine decay."""

    steps: int
    learning_rate: float = 1e-3
    batch_size: int = 16
    warmup_fraction: float = 0.1
    weight_decay: float = 0.1
    adam_beta2: float = 0.95

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")

    def training_arguments(self, output_dir: str, seed: int, use_cpu: bool, **overrides: Any) -> TrainingArguments:
        values = {
            "output_dir": output_dir,
            "max_steps": self.steps,
            "per_device_train_batch_size": self.batch_size,
            "per_device_eval_batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "lr_scheduler_type": "cosine",
            "warmup_steps": round(self.warmup_fraction * self.steps),
            "weight_decay": self.weight_decay,
            "adam_beta1": 0.9,
            "adam_beta2": self.adam_beta2,
            "max_grad_norm": 1.0,
            "seed": seed,
            # without use_cpu=True a multi-process launch on a CPU-only machine runs as independent processes
            "use_cpu": use_cpu or not torch.cuda.is_available(),
            "save_strategy": "no",
            "logging_steps": max(1, self.steps // 10),
            "report_to": "none",
            "disable_tqdm": True,
            "dataloader_drop_last": True,
        }
        values.update(overrides)
        return TrainingArguments(**values)


def gpt2_config(n_layer: int, n_embd: int, n_head: int, seq_len: int, vocab_size: int, **extra: Any) -> GPT2Config:
    """A GPT-2-shaped config (learned positions, tied embeddings, 4d MLP) with dropout off, as in the paper."""
    if n_embd % n_head:
        raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
    values = {
        "n_layer": n_layer,
        "n_embd": n_embd,
        "n_head": n_head,
        "n_positions": seq_len,
        "vocab_size": vocab_size,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
    }
    values.update(extra)
    return GPT2Config(**values)


def load_texts(name: str, seed: int = 0, max_chars: int | None = None) -> DatasetDict:
    """``train`` and ``validation`` splits with a ``text`` column from a corpus, a task, a path or a hub id."""
    from hf_eff.data import TEXT_TASKS, load_text_corpus, load_text_task

    if name in TEXT_TASKS:
        data = load_text_task(name, seed=seed)
        data = DatasetDict(train=data["train"], validation=data["validation"])
    else:
        data = load_text_corpus(name, seed=seed, max_chars=max_chars)
    if max_chars is not None:
        data["train"] = _truncate(data["train"], max_chars)
        data["validation"] = _truncate(data["validation"], max(1, max_chars // 10))
    return data


def _truncate(split: Dataset, max_chars: int) -> Dataset:
    total, keep = 0, 0
    for text in split["text"]:
        if total >= max_chars:
            break
        total += len(text)
        keep += 1
    return split.select(range(max(keep, 1)))


def pack_blocks(texts: list[str], tokenizer, seq_len: int, max_blocks: int | None = None) -> Dataset:
    """Tokenize, join with EOS and cut into ``seq_len``-token blocks (``input_ids`` and ``labels``)."""
    if seq_len < 2:
        raise ValueError(f"seq_len must be >= 2, got {seq_len}")
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
        stream.append(eos)
        if max_blocks is not None and len(stream) >= max_blocks * seq_len:
            break
    count = len(stream) // seq_len if max_blocks is None else min(max_blocks, len(stream) // seq_len)
    if count == 0:
        raise ValueError(f"the text has fewer than seq_len={seq_len} tokens; nothing to train on")
    blocks = torch.tensor(stream[: count * seq_len]).view(count, seq_len)
    return Dataset.from_dict({"input_ids": blocks.tolist(), "labels": blocks.tolist()})


def lm_blocks(
    name: str, tokenizer, seq_len: int, seed: int = 0, max_chars: int | None = None, max_eval_blocks: int | None = None
) -> DatasetDict:
    texts = load_texts(name, seed=seed, max_chars=max_chars)
    return DatasetDict(
        train=pack_blocks(list(texts["train"]["text"]), tokenizer, seq_len),
        validation=pack_blocks(list(texts["validation"]["text"]), tokenizer, seq_len, max_blocks=max_eval_blocks),
    )


@dataclass
class PhaseResult:
    """What one phase produced; ``metrics`` holds ``eval_loss``, ``perplexity`` and the phase's own numbers."""

    model: PreTrainedModel
    metrics: dict[str, float] = field(default_factory=dict)


def _quiet(trainer: Trainer) -> Trainer:
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def evaluate_lm(trainer: Trainer, data: Dataset) -> dict[str, float]:
    loss = trainer.evaluate(data)["eval_loss"]
    return {"eval_loss": loss, "perplexity": math.exp(min(loss, 50.0))}


def sparse_pretrain(
    model: PreTrainedModel,
    data: DatasetDict,
    sparsity: SparsityConfig,
    schedule: TrainSchedule,
    output_dir: str,
    seed: int = 0,
    use_cpu: bool = False,
    save: bool = True,
    quiet: bool = False,
) -> PhaseResult:
    """Pre-train ``model`` at ``sparsity`` (0 = dense through the same code path); save to ``output_dir``."""
    seq_len = len(data["train"][0]["input_ids"])
    args = schedule.training_arguments(output_dir, seed, use_cpu)
    trainer = SparsePretrainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        data_collator=default_data_collator,
        sparsity_config=sparsity,
    )
    if quiet:
        _quiet(trainer)
    trainer.train()
    metrics = evaluate_lm(trainer, data["validation"])
    flops = training_flops(model.config, 0.0, trainer.tokens_seen, seq_len)
    report = trainer.flops_report()
    metrics.update(
        sparsity_held=report["sparsity"],
        tokens=trainer.tokens_seen,
        dense_train_flops=flops.dense,
        train_flops=flops.dense - report.get("train_flops_saved", 0.0),
    )
    if save:
        trainer.save_model(output_dir)
    return PhaseResult(trainer.densify(), metrics)


def dense_finetune(
    model: PreTrainedModel | str,
    data: DatasetDict,
    schedule: TrainSchedule,
    output_dir: str,
    seed: int = 0,
    use_cpu: bool = False,
    peft_config=None,
    save: bool = False,
    quiet: bool = False,
) -> PhaseResult:
    """Fine-tune every weight of a sparse pre-trained model (or LoRA adapters with ``peft_config``)."""
    args = schedule.training_arguments(output_dir, seed, use_cpu)
    trainer = DenseFinetuneTrainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        data_collator=default_data_collator,
        peft_config=peft_config,
    )
    if quiet:
        _quiet(trainer)
    trainer.train()
    metrics = evaluate_lm(trainer, data["validation"])
    revived = trainer.revived_fraction()
    if revived is not None:
        metrics["revived_fraction"] = revived
    if save:
        trainer.save_model(output_dir)
    return PhaseResult(trainer.model, metrics)


def default_lora_config():
    """LoRA on the same matrices SPDF sparsified (GPT-2 names), rank 8."""
    from peft import LoraConfig

    return LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=["c_attn", "c_proj", "c_fc"],
        lora_dropout=0.0,
        fan_in_fan_out=True,
        task_type="CAUSAL_LM",
    )


def set_seed_everywhere(seed: int) -> None:
    from transformers import set_seed

    set_seed(seed)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# GPT-2-shaped presets for the byte-level tokenizer: (n_layer, n_embd, n_head)
MODEL_PRESETS = {"gpt2-tiny": (2, 128, 4), "gpt2-mini": (4, 192, 6), "gpt2-small": (12, 768, 12)}


def model_config_from(spec: str, seq_len: int, vocab_size: int = 257, eos_token_id: int = 256):
    """A preset name from :data:`MODEL_PRESETS` (sized for the byte-level tokenizer), or a ``config.json`` /
    checkpoint folder of any decoder."""
    if spec in MODEL_PRESETS:
        n_layer, n_embd, n_head = MODEL_PRESETS[spec]
        return gpt2_config(
            n_layer, n_embd, n_head, seq_len, vocab_size, bos_token_id=eos_token_id, eos_token_id=eos_token_id
        )
    if os.path.exists(spec):
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(spec)
    raise ValueError(f"model_config must be one of {sorted(MODEL_PRESETS)} or a config.json path/folder, got {spec!r}")


def run_spdf(
    *,
    model_config,
    pretrain_dataset: str,
    finetune_dataset: str,
    sparsity_config: SparsityConfig,
    pretrain: TrainSchedule,
    finetune: TrainSchedule,
    seq_len: int,
    output_dir: str,
    seed: int = 0,
    tokenizer=None,
    peft_config=None,
    max_chars: int | None = None,
    max_eval_blocks: int | None = None,
    use_cpu: bool = False,
) -> dict[str, Any]:
    """Sparse pre-train a model built from ``model_config``, dense fine-tune it, evaluate both phases.

    Writes ``<output_dir>/pretrained`` (sparse checkpoint, masks, model card) and ``<output_dir>/finetuned``.
    """
    from transformers import AutoModelForCausalLM

    from hf_eff.data.tokenization import byte_level_tokenizer

    set_seed_everywhere(seed)
    tokenizer = tokenizer or byte_level_tokenizer()
    if model_config.vocab_size < len(tokenizer):
        raise ValueError(f"model vocab_size {model_config.vocab_size} < tokenizer size {len(tokenizer)}")
    pre_data = lm_blocks(pretrain_dataset, tokenizer, seq_len, seed, max_chars, max_eval_blocks)
    ft_data = lm_blocks(finetune_dataset, tokenizer, seq_len, seed, max_chars, max_eval_blocks)
    model = AutoModelForCausalLM.from_config(model_config)
    pre = sparse_pretrain(
        model, pre_data, sparsity_config, pretrain, os.path.join(output_dir, "pretrained"), seed, use_cpu
    )
    tokenizer.save_pretrained(os.path.join(output_dir, "pretrained"))
    ft_dir = os.path.join(output_dir, "finetuned")
    ft = dense_finetune(
        os.path.join(output_dir, "pretrained"),
        ft_data,
        finetune,
        ft_dir,
        seed,
        use_cpu,
        peft_config=peft_config,
        save=True,
    )
    tokenizer.save_pretrained(ft_dir)
    return {
        "sparsity": sparsity_config.sparsity,
        "pretrain": pre.metrics,
        "finetune": ft.metrics,
        "pretrain_flops_reduction": pre.metrics["dense_train_flops"] / pre.metrics["train_flops"],
    }
