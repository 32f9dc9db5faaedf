"""``hf-eff bgsub FOREGROUND_VIDEO BACKGROUND_VIDEO``: the object-only video from two handheld videos of one scene."""

import argparse

from hf_eff.commands import add_common_arguments, arguments_checked, existing_file, writable_file


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bgsub",
        help="extract the foreground object(s) of a video, given a second video of the same scene without them",
        description=(
            "Background subtraction from two handheld videos (Hamid et al., arXiv 1404.5351): match each frame of "
            "FOREGROUND_VIDEO to the background frame filmed from the same viewpoint, align and difference them. "
            "Writes the object-only video (background black), optionally a mask video, and a JSON summary."
        ),
    )
    parser.add_argument("foreground_video", type=existing_file, help="video with the object(s)")
    parser.add_argument("background_video", type=existing_file, help="video of the same scene without the object(s)")
    parser.add_argument(
        "--output",
        type=writable_file,
        default=None,
        help="object-only video (.mp4/.mkv/.avi; default OUTPUT_DIR/foreground.mp4)",
    )
    parser.add_argument(
        "--masks", type=writable_file, default=None, help="also write the masks as a video (.mp4/.mkv/.avi)"
    )
    parser.add_argument(
        "--matching",
        choices=("windowed", "brute-force"),
        default="windowed",
        help="frame matching: windowed (temporal smoothness, linear cost; default) or brute-force (all pairs)",
    )
    parser.add_argument(
        "--verify_window", type=int, default=2, help="background frames verified on each side (default 2)"
    )
    parser.add_argument("--working_size", type=int, default=320, help="longer side used for processing (default 320)")
    parser.add_argument(
        "--threshold",
        type=_threshold,
        default="auto",
        help="difference threshold in 0-255 Lab units, or 'auto' (default)",
    )
    parser.add_argument("--no_progress", action="store_true", help="do not show progress bars")
    add_common_arguments(parser, "hf_eff_bgsub")
    parser.set_defaults(func=run)


def _threshold(value: str) -> float | str:
    if value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or 'auto', got {value!r}") from None


def run(args: argparse.Namespace) -> int:
    import json

    from hf_eff.video import BackgroundSubtractor
    from hf_eff.video._opencv import require_cv2

    require_cv2().setRNGSeed(args.seed)  # RANSAC draws from OpenCV's global generator
    with arguments_checked():
        subtractor = BackgroundSubtractor(
            matching=args.matching,
            verify_window=args.verify_window,
            working_size=args.working_size,
            threshold=args.threshold,
        )
    output = args.output or args.output_dir / "foreground.mp4"
    result = subtractor(
        str(args.foreground_video),
        str(args.background_video),
        output_video=output,
        mask_video=args.masks,
        return_frames=False,
        progress=not args.no_progress,
    )
    args.output_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "foreground_video": str(args.foreground_video),
        "background_video": str(args.background_video),
        "output": str(output),
        "masks": None if args.masks is None else str(args.masks),
        "matches": result.matches.tolist(),
        "alignment": result.alignment,
        "inliers": result.inliers.tolist(),
        "foreground_fraction": result.masks.mean(axis=(1, 2)).round(4).tolist(),
        "stats": {k: v for k, v in result.stats.items() if k != "coarse_path"},
    }
    summary_path = args.output_dir / "bgsub.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    stats = result.stats
    print(
        f"{stats['frames']} frames matched against {stats['background_frames']} background frames with "
        f"{stats['verifications']} alignments ({stats['strategy']}); wrote {output} and {summary_path}"
    )
    return 0
