"""SPDF end to end: sparse pre-training of a small GPT-2, dense fine-tuning on another domain, evaluation.

    python examples/spdf/run_spdf.py --sparsity 0.75
    accelerate launch examples/spdf/run_spdf.py --sparsity 0.75            # any number of processes / GPUs

Offline by default: pre-training on Python standard-library docstrings, fine-tuning on numpy / scikit-learn / torch
docstrings (``hf_eff.data``), with a byte-level tokenizer built locally. ``--pretrain_dataset`` and
``--finetune_dataset`` also take a local path or a Hugging Face dataset id with a ``text`` column.
"""

import argparse
import json
import math
import os

import torch
from transformers import AutoModelForCausalLM, TrainingArguments, default_data_collator

from hf_eff import DenseFinetuneTrainer, SparsePretrainer, SparsityConfig, training_flops
from hf_eff.data.tokenization import byte_level_tokenizer
from hf_eff.sparsity.recipe import gpt2_config, lm_blocks


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sparsity", type=float, default=0.75)
    parser.add_argument("--n_layer", type=int, default=4)
    parser.add_argument("--n_embd", type=int, default=192)
    parser.add_argument("--n_head", type=int, default=6)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=16, help="per device")
    parser.add_argument("--pretrain_dataset", default="python-stdlib-docs")
    parser.add_argument("--finetune_dataset", default="python-scientific-docs")
    parser.add_argument("--pretrain_steps", type=int, default=1000)
    parser.add_argument("--finetune_steps", type=int, default=300)
    parser.add_argument("--max_chars", type=int, default=None, help="cut each training corpus (quick tries)")
    parser.add_argument("--output_dir", default="spdf_example")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    tokenizer = byte_level_tokenizer()
    pretrain_data = lm_blocks(args.pretrain_dataset, tokenizer, args.seq_len, args.seed, args.max_chars)
    finetune_data = lm_blocks(args.finetune_dataset, tokenizer, args.seq_len, args.seed, args.max_chars)
    config = gpt2_config(
        args.n_layer,
        args.n_embd,
        args.n_head,
        args.seq_len,
        len(tokenizer),
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    common = {
        "per_device_train_batch_size": args.batch_size,
        "lr_scheduler_type": "cosine",
        "max_grad_norm": 1.0,
        "logging_steps": 50,
        "report_to": "none",
        "seed": args.seed,
        "save_strategy": "no",
        # on a CPU-only machine, use_cpu=True is what makes `accelerate launch` processes one DDP group
        "use_cpu": not torch.cuda.is_available(),
    }

    # 1. sparse pre-training (AdamW 0.9/0.95, weight decay 0.1, as in the Cerebras GPT-3 sparsity configs)
    sparse_dir = os.path.join(args.output_dir, "sparse")
    pretrainer = SparsePretrainer(
        model=AutoModelForCausalLM.from_config(config),
        args=TrainingArguments(
            output_dir=sparse_dir,
            max_steps=args.pretrain_steps,
            learning_rate=2e-3,
            warmup_steps=0.1,
            weight_decay=0.1,
            adam_beta2=0.95,
            **common,
        ),
        train_dataset=pretrain_data["train"],
        eval_dataset=pretrain_data["validation"],
        data_collator=default_data_collator,
        processing_class=tokenizer,
        sparsity_config=SparsityConfig(sparsity=args.sparsity, seed=args.seed),
    )
    pretrainer.train()
    pretrain_loss = pretrainer.evaluate()["eval_loss"]
    pretrainer.save_model(sparse_dir)  # dense-format weights + sparsity_masks.safetensors + model card
    pretrainer.accelerator.wait_for_everyone()

    # 2. dense fine-tuning: masks removed, fresh optimizer, zeroed weights learn from 0 (with a warm-up)
    finetuner = DenseFinetuneTrainer(
        model=sparse_dir,
        args=TrainingArguments(
            output_dir=os.path.join(args.output_dir, "dense"),
            max_steps=args.finetune_steps,
            learning_rate=5e-4,
            warmup_steps=0.1,
            weight_decay=0.01,
            **common,
        ),
        train_dataset=finetune_data["train"],
        eval_dataset=finetune_data["validation"],
        data_collator=default_data_collator,
        processing_class=tokenizer,
    )
    finetuner.train()
    finetune_loss = finetuner.evaluate()["eval_loss"]
    finetuner.save_model()

    flops = training_flops(config, args.sparsity, pretrainer.tokens_seen, args.seq_len)
    result = {
        "sparsity": args.sparsity,
        "pretrain_eval_loss": pretrain_loss,
        "pretrain_flops_reduction_theoretical": flops.reduction,
        "finetune_eval_loss": finetune_loss,
        "finetune_perplexity": math.exp(finetune_loss),
        "revived_fraction": finetuner.revived_fraction(),
    }
    if finetuner.is_world_process_zero():
        print(json.dumps(result, indent=2))
        with open(os.path.join(args.output_dir, "results.json"), "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
