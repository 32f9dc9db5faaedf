"""SPDF end to end: sparse pre-training of a small GPT-2, dense fine-tuning on another domain, evaluation.

Every ``TrainingArguments`` flag configures the sparse pre-training (``--max_steps``, ``--learning_rate``,
``--per_device_train_batch_size``, ``--fsdp``, ...); fine-tuning reuses them with its own ``--finetune_*`` values.

    python examples/spdf/run_spdf.py --sparsity 0.75 --output_dir spdf_run
    # two real CPU processes (one DDP group; `accelerate launch --cpu --num_processes 2` would start ONE):
    torchrun --nproc_per_node 2 examples/spdf/run_spdf.py --sparsity 0.75 --output_dir spdf_run \\
        --expected_world_size 2
    # FSDP2 on GPUs (accelerate enables FSDP on accelerators only; on a CPU it falls back to DDP):
    torchrun --nproc_per_node 8 examples/spdf/run_spdf.py --output_dir spdf_run --expected_world_size 8 \\
        --fsdp true --fsdp_config '{"fsdp_version": 2, "transformer_layer_cls_to_wrap": ["GPT2Block"]}'

Offline by default: pre-training on Python standard-library docstrings, fine-tuning on numpy / scikit-learn / torch
docstrings (``hf_eff.data``), with a byte-level tokenizer built locally. ``--pretrain_dataset`` and
``--finetune_dataset`` also take a local path or a Hugging Face dataset id with a ``text`` column, or
``docstring-summaries`` (signature -> summary). On a CPU-only machine ``use_cpu`` is set for you: without it
torchrun's processes would not form one process group.
"""

import dataclasses
import json
import math
import os
import sys
from dataclasses import dataclass, field

import torch
from transformers import AutoModelForCausalLM, HfArgumentParser, TrainingArguments, default_data_collator

from hf_eff import DenseFinetuneTrainer, SparsePretrainer, SparsityConfig, training_flops
from hf_eff.data.tokenization import byte_level_tokenizer
from hf_eff.distributed import world_size_problem
from hf_eff.sparsity.recipe import gpt2_config, lm_blocks


@dataclass
class SPDFScriptArguments:
    """Model, data, sparsity and fine-tuning settings; the pre-training run is configured by TrainingArguments."""

    sparsity: float = field(default=0.75, metadata={"help": "fraction of every block matrix held at zero"})
    distribution: str = field(default="uniform", metadata={"help": "'uniform' (the paper) or 'erk'"})
    n_layer: int = field(default=4, metadata={"help": "GPT-2 blocks"})
    n_embd: int = field(default=192, metadata={"help": "GPT-2 width"})
    n_head: int = field(default=6, metadata={"help": "attention heads"})
    seq_len: int = field(default=128, metadata={"help": "tokens per packed block"})
    pretrain_dataset: str = field(default="python-stdlib-docs", metadata={"help": "corpus, task, path or HF id"})
    finetune_dataset: str = field(default="python-scientific-docs", metadata={"help": "corpus, task, path or HF id"})
    max_chars: int | None = field(default=None, metadata={"help": "cut each training corpus (quick tries)"})
    finetune_steps: int = field(default=300, metadata={"help": "dense fine-tuning optimizer steps"})
    finetune_learning_rate: float = field(default=5e-4, metadata={"help": "peak LR of dense fine-tuning"})
    finetune_warmup_steps: float = field(default=0.1, metadata={"help": "warm-up at the sparse-to-dense switch"})
    expected_world_size: int | None = field(default=None, metadata={"help": "fail unless this many processes run"})


def parse(argv: list[str] | None = None) -> tuple[SPDFScriptArguments, TrainingArguments]:
    parser = HfArgumentParser((SPDFScriptArguments, TrainingArguments))
    # the Cerebras GPT-3 sparse pre-training recipe: AdamW (0.9, 0.95), weight decay 0.1, clip 1.0, cosine
    defaults = [
        "--output_dir", "spdf_example", "--max_steps", "1000", "--learning_rate", "2e-3",
        "--per_device_train_batch_size", "16", "--lr_scheduler_type", "cosine", "--warmup_steps", "0.1",
        "--weight_decay", "0.1", "--adam_beta2", "0.95", "--max_grad_norm", "1.0", "--logging_steps", "50",
        "--report_to", "none", "--save_strategy", "no",
    ]  # fmt: skip
    if not torch.cuda.is_available():
        defaults += ["--use_cpu", "true"]  # joins torchrun processes into one gloo group on CPU
    argv = list(sys.argv[1:] if argv is None else argv)
    script_args, training_args = parser.parse_args_into_dataclasses(defaults + argv)  # the command line wins
    if problem := world_size_problem(training_args.world_size, script_args.expected_world_size):
        raise SystemExit(problem)
    return script_args, training_args


def main(argv: list[str] | None = None) -> dict:
    script_args, pretrain_args = parse(argv)
    tokenizer = byte_level_tokenizer()
    seed, seq_len = pretrain_args.seed, script_args.seq_len
    pretrain_data = lm_blocks(script_args.pretrain_dataset, tokenizer, seq_len, seed, script_args.max_chars)
    finetune_data = lm_blocks(script_args.finetune_dataset, tokenizer, seq_len, seed, script_args.max_chars)
    config = gpt2_config(
        script_args.n_layer,
        script_args.n_embd,
        script_args.n_head,
        seq_len,
        len(tokenizer),
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )

    # 1. sparse pre-training
    sparse_dir = os.path.join(pretrain_args.output_dir, "sparse")
    pretrain_args = dataclasses.replace(pretrain_args, output_dir=sparse_dir)
    pretrainer = SparsePretrainer(
        model=AutoModelForCausalLM.from_config(config),
        args=pretrain_args,
        train_dataset=pretrain_data["train"],
        eval_dataset=pretrain_data["validation"],
        data_collator=default_data_collator,
        processing_class=tokenizer,
        sparsity_config=SparsityConfig(script_args.sparsity, script_args.distribution, seed=seed),
    )
    pretrainer.train(resume_from_checkpoint=pretrain_args.resume_from_checkpoint)
    pretrain_loss = pretrainer.evaluate()["eval_loss"]
    pretrainer.save_model(sparse_dir)  # dense-format weights + sparsity_masks.safetensors + model card
    pretrainer.accelerator.wait_for_everyone()

    # 2. dense fine-tuning: masks removed, fresh optimizer, zeroed weights learn from 0 (with a warm-up)
    finetune_args = dataclasses.replace(
        pretrain_args,
        output_dir=os.path.join(os.path.dirname(sparse_dir), "dense"),
        max_steps=script_args.finetune_steps,
        learning_rate=script_args.finetune_learning_rate,
        warmup_steps=script_args.finetune_warmup_steps,
        weight_decay=0.01,
        adam_beta2=0.999,
        resume_from_checkpoint=None,
    )
    finetuner = DenseFinetuneTrainer(
        model=sparse_dir,
        args=finetune_args,
        train_dataset=finetune_data["train"],
        eval_dataset=finetune_data["validation"],
        data_collator=default_data_collator,
        processing_class=tokenizer,
    )
    finetuner.train()
    finetune_loss = finetuner.evaluate()["eval_loss"]
    finetuner.save_model()

    flops = training_flops(config, script_args.sparsity, pretrainer.tokens_seen, seq_len)
    result = {
        "sparsity": script_args.sparsity,
        "world_size": pretrain_args.world_size,
        "pretrain_eval_loss": pretrain_loss,
        "pretrain_flops_reduction_theoretical": flops.reduction,
        "finetune_eval_loss": finetune_loss,
        "finetune_perplexity": math.exp(finetune_loss),
        "revived_fraction": finetuner.revived_fraction(),
    }
    if finetuner.is_world_process_zero():
        print(json.dumps(result, indent=2))
        with open(os.path.join(os.path.dirname(sparse_dir), "results.json"), "w") as handle:
            json.dump(result, handle, indent=2)
    return result


if __name__ == "__main__":
    main()
