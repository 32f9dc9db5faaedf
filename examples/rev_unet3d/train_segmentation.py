"""Train the reversible-MBConv 3D U-Net for volumetric segmentation with the Hugging Face Trainer.

Data (``--data``):
- ``tissue`` (default, offline): the MNI152 T1 template bundled in nilearn (``pip install 'hf_eff[medical]'``),
  with a grey / white matter / other label map; trains on one half of the brain and evaluates on the other.
- ``synthetic``: BraTS-like volumes (4 modalities, nested tumour labels {0, 1, 2, 4}, WT/TC/ET regions).
- a folder: real BraTS 2020/2021 training data (``<case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz``); 80/20 split
  by case.

Commands (CPU or GPU; the first finishes in a few minutes on a laptop CPU):

    python examples/rev_unet3d/train_segmentation.py --output_dir rev_unet3d_tissue --max_steps 60
    python examples/rev_unet3d/train_segmentation.py --data synthetic --output_dir rev_unet3d_synth --max_steps 60
    python examples/rev_unet3d/train_segmentation.py --data /data/MICCAI_BraTS2020_TrainingData \\
        --crop_size 128 --channels 16,32,64,128,256 --output_dir rev_unet3d_brats --num_train_epochs 100
    torchrun --nproc_per_node 2 examples/rev_unet3d/train_segmentation.py --output_dir out --max_steps 20
    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \\
        examples/rev_unet3d/train_segmentation.py --output_dir out --max_steps 20   # 2 CPU processes too

(``accelerate launch --cpu --num_processes 2`` silently starts ONE process; the script checks the world size it
got against the launcher's ``WORLD_SIZE`` and stops if they differ.) ``--storing`` trains the same network storing
activations (the baseline). Evaluation reports Dice and HD95 per region (the ``brats_segmentation`` metric) on
held-out crops, then the script segments the whole held-out volume with ``model.predict_volume`` (sliding
windows, Gaussian blending; any size works, e.g. 240 x 240 x 155 BraTS scans).
"""

import os
import sys
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import HfArgumentParser, Trainer, TrainingArguments

import hf_eff.metrics
from hf_eff import RevUNet3DConfig, RevUNet3DForSemanticSegmentation
from hf_eff.data.volumes import (
    LabelledVolume,
    VolumeCropDataset,
    load_brats,
    load_tissue_volume,
    make_synthetic_brats,
)
from hf_eff.models.rev_unet3d import logits_to_label_map


@dataclass
class SegmentationArguments:
    data: str = field(default="tissue", metadata={"help": "'tissue', 'synthetic', or a BraTS training folder"})
    crop_size: int = field(default=32, metadata={"help": "cubic training crop / inference window side"})
    channels: str = field(default="16,32,64", metadata={"help": "level widths, fine to coarse"})
    blocks_per_level: int = field(default=2, metadata={"help": "reversible blocks per encoder and decoder level"})
    depth_multiplier: float = 1.0
    width_multiplier: float = 1.0
    expand_ratio: float = 4.0
    storing: bool = field(default=False, metadata={"help": "store activations (baseline) instead of reversible"})
    samples_per_volume: int = field(default=32, metadata={"help": "random crops per training volume per epoch"})
    num_synthetic: int = field(default=8, metadata={"help": "volumes for --data synthetic"})
    synthetic_size: int = field(default=48, metadata={"help": "cubic side of the synthetic volumes"})
    max_cases: int | None = field(default=None, metadata={"help": "use at most this many BraTS cases"})


def check_world_size(training_args: TrainingArguments) -> None:
    """Stop if the processes did not form the group the launcher started (see HF_CONVENTIONS §4)."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if training_args.world_size != launched:
        raise RuntimeError(
            f"the launcher started {launched} processes but Trainer sees a world size of {training_args.world_size}; "
            "on a CPU-only machine pass --use_cpu (set automatically here) and launch with torchrun or "
            "`accelerate launch --multi_gpu --num_processes N` (not `--cpu`)"
        )


def split_volumes(args: SegmentationArguments, seed: int) -> tuple[list[LabelledVolume], list[LabelledVolume]]:
    if args.data == "tissue":
        volume = load_tissue_volume(downsample=2)
        half = volume.labels.shape[0] // 2  # left / right hemisphere (the template is symmetric)
        train = LabelledVolume(volume.image[:, :half], volume.labels[:half], "tissue_left", volume.spacing)
        held = LabelledVolume(volume.image[:, half:], volume.labels[half:], "tissue_right", volume.spacing)
        return [train], [held]
    if args.data == "synthetic":
        volumes = [make_synthetic_brats((args.synthetic_size,) * 3, seed=seed + i) for i in range(args.num_synthetic)]
    else:
        volumes = load_brats(args.data, limit=args.max_cases)
    cut = max(1, int(0.8 * len(volumes))) if len(volumes) > 1 else 1
    return volumes[:cut], volumes[cut:] or volumes[:1]


def build_config(args: SegmentationArguments, in_channels: int) -> RevUNet3DConfig:
    channels = [int(c) for c in args.channels.split(",")]
    levels = len(channels)
    task = (
        {"label_mode": "classes", "label_values": (0, 1, 2), "cross_entropy_weight": 1.0}
        if args.data == "tissue"
        else {"label_mode": "regions", "cross_entropy_weight": 1.0}
    )
    return RevUNet3DConfig(
        in_channels=in_channels,
        channels=channels,
        encoder_depths=[args.blocks_per_level] * levels,
        decoder_depths=[args.blocks_per_level] * (levels - 1),
        expand_ratio=args.expand_ratio,
        depth_multiplier=args.depth_multiplier,
        width_multiplier=args.width_multiplier,
        crop_size=[args.crop_size] * 3,
        reversible=not args.storing,
        **task,
    )


def metric_regions(config: RevUNet3DConfig) -> dict[str, list[int]]:
    if config.label_mode == "regions":
        return dict(zip(config.region_names, config.region_labels))
    return {"GM": [1], "WM": [2]}


def make_compute_metrics(config: RevUNet3DConfig):
    metric = hf_eff.metrics.load("brats_segmentation")

    def compute_metrics(eval_pred) -> dict[str, float]:
        logits = torch.from_numpy(np.asarray(eval_pred.predictions))
        predictions = logits_to_label_map(logits, config.label_mode, config.label_values, config.region_labels)
        return metric.compute(
            predictions=list(predictions.numpy()), references=list(eval_pred.label_ids), regions=metric_regions(config)
        )

    return compute_metrics


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not torch.cuda.is_available() and not any(a.startswith("--use_cpu") for a in argv):
        # use_cpu is what joins torchrun / accelerate processes into one DDP group on a CPU-only machine; it has to
        # be set before TrainingArguments resolves the distributed setup (setting it afterwards has no effect)
        argv += ["--use_cpu", "true"]
    parser = HfArgumentParser((SegmentationArguments, TrainingArguments))
    # every parameter gets a gradient in each step: DDP needs no unused-parameter search (and prints no warning)
    parser.set_defaults(ddp_find_unused_parameters=False)
    args, training_args = parser.parse_args_into_dataclasses(args=argv)
    check_world_size(training_args)
    if training_args.report_to == "all" or training_args.report_to == ["all"]:
        training_args.report_to = []

    train_volumes, held_out = split_volumes(args, training_args.seed)
    config = build_config(args, in_channels=train_volumes[0].image.shape[0])
    torch.manual_seed(training_args.seed)
    model = RevUNet3DForSemanticSegmentation(config)
    crop = (args.crop_size,) * 3
    train_data = VolumeCropDataset(train_volumes, crop, args.samples_per_volume, seed=training_args.seed)
    eval_data = VolumeCropDataset(held_out, crop, samples_per_volume=4, seed=10_000 + training_args.seed)

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_data,
        eval_dataset=eval_data,
        compute_metrics=make_compute_metrics(config),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    metrics = trainer.evaluate()
    trainer.save_model(training_args.output_dir)

    if trainer.is_world_process_zero():
        print({k: round(v, 4) for k, v in metrics.items() if k.startswith("eval_")})
        volume = held_out[0]
        labels = trainer.model.predict_volume(torch.from_numpy(volume.image), output="labels").cpu().numpy()
        whole = hf_eff.metrics.load("brats_segmentation").compute(
            predictions=[labels], references=[volume.labels], regions=metric_regions(config), spacing=volume.spacing
        )
        print(
            f"whole held-out volume {volume.name} {volume.labels.shape}: "
            + str({k: round(v, 4) for k, v in whole.items()})
        )
    trainer.accelerator.end_training()


if __name__ == "__main__":
    main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # gloo under torch 2.13 may abort at interpreter exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
