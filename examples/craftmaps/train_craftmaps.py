"""Fit a CRAFTMaps polynomial-kernel classifier in one pass over an image dataset and save it, ready to push.

    python examples/craftmaps/train_craftmaps.py                        # sklearn digits, offline
    python examples/craftmaps/train_craftmaps.py --dataset fashion-mnist --n_components 2048
    accelerate launch --multi_gpu --num_processes 2 examples/craftmaps/train_craftmaps.py   # 2 processes, even on CPU

Each process streams its own shard of the training set; the normal equations are summed across processes, so every
rank ends with the same model. The main process evaluates it, saves it (config, safetensors weights, model card)
and optionally pushes it to the Hub.
"""

import argparse
import json
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", help="hf_eff.load_image_dataset name, local path or Hub id")
    parser.add_argument("--n_components", type=int, default=512, help="output dimension E of the random map")
    parser.add_argument("--n_components_up", type=int, default=None, help="up-projection dimension D (default 4E)")
    parser.add_argument("--degree", type=int, default=3)
    parser.add_argument("--gamma", type=float, default=1.0)
    parser.add_argument("--coef0", type=float, default=1.0)
    parser.add_argument("--up", choices=["auto", "ctr", "ts", "rm"], default="auto")
    parser.add_argument("--down", choices=["auto", "countsketch", "srht", "gaussian"], default="auto")
    parser.add_argument("--code", choices=["ovr", "random"], default="random", help="output code of the ECOC head")
    parser.add_argument("--alpha", type=float, default=1e-3, help="ridge penalty")
    parser.add_argument("--batch_size", type=int, default=512, help="rows per streamed batch")
    parser.add_argument("--max_train_samples", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", type=Path, default=Path("craftmaps-digits"))
    parser.add_argument("--push_to_hub", action="store_true", help="upload the saved model (needs a token)")
    parser.add_argument("--hub_model_id", default=None, help="repository id for --push_to_hub")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.push_to_hub and not args.hub_model_id:
        raise SystemExit("error: --push_to_hub needs --hub_model_id")
    import torch
    from accelerate import Accelerator

    import hf_eff
    from hf_eff import CraftMapsConfig, CraftMapsForClassification

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    data = hf_eff.load_image_dataset(args.dataset, seed=args.seed, max_train_samples=args.max_train_samples)
    label_names = data["train"].features["label"].names
    channels, height, width = torch.tensor(data["train"][0]["pixel_values"]).shape
    config = CraftMapsConfig(
        num_features=channels * height * width,
        image_size=[height, width],
        num_channels=channels,
        degree=args.degree,
        gamma=args.gamma,
        coef0=args.coef0,
        n_components=args.n_components,
        n_components_up=args.n_components_up,
        up=args.up,
        down=args.down,
        code=args.code,
        alpha=args.alpha,
        seed=args.seed,
        id2label=dict(enumerate(label_names)),
    )
    model = CraftMapsForClassification(config).to(accelerator.device)
    shard = data["train"].shard(accelerator.num_processes, accelerator.process_index, contiguous=True)
    model.fit(shard, batch_size=args.batch_size)  # one pass; sums the normal equations over all processes

    if accelerator.is_main_process:
        test = data["test"].with_format("torch")
        correct = 0
        for batch in test.iter(batch_size=args.batch_size):
            predicted = model.predict(batch["pixel_values"].to(accelerator.device)).cpu()
            correct += int((predicted == batch["label"]).sum())
        accuracy = correct / len(test)
        model.card_metadata = {"datasets": [args.dataset], "metrics": ["accuracy"]}
        model.save_pretrained(args.output_dir)
        metrics = {"test_accuracy": accuracy, "train_samples": model.num_fit_samples, "dataset": args.dataset}
        (args.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print(
            f"test accuracy {accuracy:.4f} on {len(test)} {args.dataset} images "
            f"(E={args.n_components}, degree {args.degree}); saved to {args.output_dir}"
        )
        if args.push_to_hub:
            model.push_to_hub(args.hub_model_id)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
