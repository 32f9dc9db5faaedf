"""Extract the foreground object from handheld videos with ``pipeline("video-background-subtraction")``.

Give it your own pair (a video with the object, a video of the same scene without it), or let it render synthetic
handheld pairs with ground truth (offline, from scikit-image photographs) and report mask F1 / IoU (the ``evaluate``
metric ``hf_eff.metrics.load("mask_f1")``) and match accuracy per pair:

    python examples/background_subtraction/run_bgsub.py                                   # 2 synthetic pairs
    python examples/background_subtraction/run_bgsub.py --foreground with.mp4 --background empty.mp4
    accelerate launch --multi_gpu --num_processes 2 --mixed_precision no --dynamo_backend no \
        examples/background_subtraction/run_bgsub.py --num_pairs 4
    # 2 CPU processes: the pairs are split between them (each process runs the pipeline on its share)

Writes, per pair, the object-only video (background black), a mask video and a JSON summary to --output_dir.
"""

import argparse
import json
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--foreground", type=Path, help="video with the object(s); omit for synthetic pairs")
    parser.add_argument("--background", type=Path, help="video of the same scene without the object(s)")
    parser.add_argument("--num_pairs", type=int, default=2, help="synthetic pairs to render (default 2)")
    parser.add_argument("--frames", type=int, default=40, help="frames of each synthetic object video (default 40)")
    parser.add_argument("--shake", type=float, default=2.0, help="hand shake of the synthetic camera, px (default 2)")
    parser.add_argument("--matching", choices=["windowed", "brute-force"], default="windowed")
    parser.add_argument("--verify_window", type=int, default=2, help="frames verified on each side of a match")
    parser.add_argument("--output_dir", type=Path, default=Path("hf_eff_bgsub_example"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if (args.foreground is None) != (args.background is None):
        parser.error("give both --foreground and --background, or neither (synthetic pairs)")
    if args.num_pairs < 1 or args.frames < 1:
        parser.error("--num_pairs and --frames must be positive")
    return args


def main() -> None:
    args = parse_args()
    import cv2
    from accelerate import PartialState
    from transformers import pipeline

    import hf_eff
    import hf_eff.metrics
    from hf_eff.video import make_handheld_pair, match_accuracy

    state = PartialState(cpu=True)  # the method runs on the CPU; processes share the list of pairs
    cv2.setRNGSeed(args.seed + state.process_index)
    config = hf_eff.VideoBackgroundSubtractionConfig(matching=args.matching, verify_window=args.verify_window)
    pipe = pipeline("video-background-subtraction", model=hf_eff.VideoBackgroundSubtractionModel(config), device="cpu")
    args.output_dir.mkdir(parents=True, exist_ok=True)

    jobs = [("user", None)] if args.foreground is not None else [(f"pair{k}", k) for k in range(args.num_pairs)]
    with state.split_between_processes(jobs) as my_jobs:
        for name, index in my_jobs:
            if index is None:
                video, background, truth = str(args.foreground), str(args.background), None
            else:
                truth = make_handheld_pair(
                    args.frames, round(1.2 * args.frames), shake=args.shake, seed=args.seed + index
                )
                video, background = truth.foreground, truth.background
            out = pipe(
                video,
                background_video=background,
                output_video=args.output_dir / f"{name}_foreground.mp4",
                mask_video=args.output_dir / f"{name}_masks.mp4",
                output_format="numpy",
                return_foreground=False,
                progress=state.is_main_process,
            )
            summary = {
                "pair": name,
                "matches": out["matches"],
                "alignment_methods": sorted(set(out["alignment"])),
                "alignments_computed": out["stats"]["verifications"],
                "seconds": out["stats"]["seconds"],
            }
            if truth is not None:
                # in memory: processes running side by side share no metric cache files
                metric = hf_eff.metrics.load("mask_f1", keep_in_memory=True)
                summary.update(metric.compute(predictions=list(out["masks"]), references=list(truth.masks)))
                summary["match_within_1_frame"] = match_accuracy(out["matches"], truth.true_matches)
            (args.output_dir / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
            scores = f", F1 {summary['f1']:.3f}, IoU {summary['iou']:.3f}" if truth is not None else ""
            print(f"[process {state.process_index}] {name}: {len(out['matches'])} frames{scores} -> {args.output_dir}")
    state.wait_for_everyone()


if __name__ == "__main__":
    main()
