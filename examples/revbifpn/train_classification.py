"""Train a reversible RevBiFPN image classifier with the Hugging Face Trainer.

Runs offline on the default data (scikit-learn's 8x8 digits, upsampled), on CPU or GPU, single process or
distributed:

    python examples/revbifpn/train_classification.py --variant s0 --resolution 32 --num_train_epochs 1
    accelerate launch examples/revbifpn/train_classification.py --variant s0
    torchrun --nproc_per_node 2 examples/revbifpn/train_classification.py --variant s0   # 2 CPU processes

Reversibility needs nothing from the training loop: parameter gradients are returned from the reversible
autograd Function, so DDP, gradient accumulation and ``resume_from_checkpoint`` behave as for any model.
``--storing`` trains the same network storing activations (the baseline); the script prints the bytes saved
for backward of one batch in both modes.
"""

import argparse

import numpy as np
import torch
from transformers import Trainer, TrainingArguments

from hf_eff import RevBiFPNConfig, RevBiFPNForImageClassification, load_image_dataset
from hf_eff.bench import SavedTensorsMeter


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", default="digits", help="'digits', 'fashion-mnist', a local path or a HF dataset id"
    )
    parser.add_argument("--variant", default="s0", help="RevBiFPN preset s0 ... s6")
    parser.add_argument("--resolution", type=int, default=32, help="input size (multiple of 32)")
    parser.add_argument("--storing", action="store_true", help="store activations instead (the baseline)")
    parser.add_argument("--output_dir", default="revbifpn_digits")
    parser.add_argument("--num_train_epochs", type=float, default=2.0)
    parser.add_argument("--max_steps", type=int, default=-1)
    parser.add_argument("--per_device_train_batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--max_train_samples", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume_from_checkpoint", default=None)
    args = parser.parse_args(argv)
    if args.resolution % 32:
        parser.error(f"--resolution must be a multiple of 32 (the network's total stride), got {args.resolution}")
    return args


class Collator:
    """Stack images, resize them to ``resolution`` and centre them around 0 (the data is in [0, 1])."""

    def __init__(self, resolution: int):
        self.resolution = resolution

    def __call__(self, examples):
        pixels = torch.stack([torch.as_tensor(np.asarray(e["pixel_values"], dtype=np.float32)) for e in examples])
        pixels = torch.nn.functional.interpolate(pixels, size=self.resolution, mode="bilinear", align_corners=False)
        labels = torch.tensor([int(e["label"]) for e in examples])
        return {"pixel_values": (pixels - 0.5) / 0.5, "labels": labels}


def accuracy(eval_pred) -> dict[str, float]:
    logits, labels = eval_pred
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


def saved_bytes_per_mode(model, batch) -> dict[str, int]:
    """Bytes autograd saves for backward on one batch, reversible vs storing (parameters excluded)."""
    result = {}
    for mode in ("reversible", "storing"):
        model.set_reversible(mode == "reversible")
        with SavedTensorsMeter(exclude=list(model.parameters())) as meter:
            loss = model(**batch).loss
        del loss
        result[mode] = meter.bytes
    return result


def main(argv=None) -> None:
    args = parse_args(argv)
    data = load_image_dataset(args.dataset, seed=args.seed, max_train_samples=args.max_train_samples)
    label_names = data["train"].features["label"].names
    channels = int(np.asarray(data["train"][0]["pixel_values"]).shape[0])
    config = RevBiFPNConfig.from_variant(
        args.variant,
        num_channels=channels,
        image_size=args.resolution,
        id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
        reversible=not args.storing,
    )
    torch.manual_seed(args.seed)
    model = RevBiFPNForImageClassification(config)
    collator = Collator(args.resolution)

    training_args = TrainingArguments(
        output_dir=args.output_dir,
        # on a CPU-only machine use_cpu=True is what joins `accelerate launch` / torchrun processes into one DDP group
        use_cpu=not torch.cuda.is_available(),
        num_train_epochs=args.num_train_epochs,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=64,
        learning_rate=args.learning_rate,
        weight_decay=0.05,
        warmup_steps=0.05,
        lr_scheduler_type="cosine",
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        logging_steps=10,
        remove_unused_columns=False,
        report_to="none",
        seed=args.seed,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        data_collator=collator,
        train_dataset=data["train"],
        eval_dataset=data["test"],
        compute_metrics=accuracy,
    )
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    metrics = trainer.evaluate()
    trainer.save_model(args.output_dir)

    if trainer.is_world_process_zero():
        unwrapped = trainer.model.train()
        batch = collator([data["train"][i] for i in range(min(8, len(data["train"])))])
        saved = saved_bytes_per_mode(unwrapped, {k: v.to(unwrapped.device) for k, v in batch.items()})
        unwrapped.set_reversible(not args.storing)
        print(f"eval accuracy: {metrics['eval_accuracy']:.4f}")
        print(
            f"bytes saved for backward (batch 8): reversible {saved['reversible']:,}, storing {saved['storing']:,} "
            f"({saved['storing'] / saved['reversible']:.1f}x less when reversible)"
        )


if __name__ == "__main__":
    main()
