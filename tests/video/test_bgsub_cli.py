"""``hf-eff bgsub``: runs on two files, writes the outputs, one-line errors."""

import json
import subprocess
import sys

import numpy as np

from hf_eff.cli import main
from hf_eff.video import read_video, write_video


def test_bgsub_command_writes_object_video_masks_and_summary(tmp_path, small_pair, capsys):
    fg = write_video(tmp_path / "fg.mkv", small_pair.foreground[:12])
    bg = write_video(tmp_path / "bg.mkv", small_pair.background[:15])
    out = tmp_path / "object.mkv"
    code = main(
        [
            "bgsub",
            str(fg),
            str(bg),
            "--output",
            str(out),
            "--masks",
            str(tmp_path / "m.mkv"),
            "--working_size",
            "160",
            "--no_progress",
            "--output_dir",
            str(tmp_path / "run"),
        ]
    )
    assert code == 0
    assert read_video(out).shape == (12, 72, 96, 3)
    masks = read_video(tmp_path / "m.mkv")[..., 0] > 127
    assert (read_video(out)[~masks] == 0).all()
    summary = json.loads((tmp_path / "run" / "bgsub.json").read_text())
    assert len(summary["matches"]) == 12 and summary["stats"]["strategy"] == "windowed"
    assert np.abs(np.array(summary["matches"]) - small_pair.true_matches[:12]).max() <= 1
    assert "12 frames matched" in capsys.readouterr().out


def _bgsub(*args: str) -> tuple[int, str]:
    command = [sys.executable, "-m", "hf_eff.cli", "bgsub", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return result.returncode, result.stderr.strip()


def test_bgsub_command_reports_errors_in_one_line_with_the_promised_exit_code(tmp_path):
    code, err = _bgsub(str(tmp_path / "nope.mp4"), str(tmp_path / "bg.mp4"), "--output_dir", str(tmp_path))
    assert code == 2  # a missing input file is a bad argument, refused before any work
    assert err.startswith("hf-eff bgsub: error: argument foreground_video: no such file") and "\n" not in err
    video = write_video(tmp_path / "v.mkv", np.zeros((2, 16, 16, 3), np.uint8))
    for bad_argument, message in (
        (["--threshold", "high"], "--threshold: must be a number or 'auto'"),
        (["--verify_window", "-1"], "verify_window must be an int >= 0"),
    ):
        code, err = _bgsub(str(video), str(video), *bad_argument, "--output_dir", str(tmp_path))
        assert code == 2 and message in err and "\n" not in err, (code, err)


def test_bgsub_command_on_a_folder_of_pairs(tmp_path, small_pair, capsys):
    folder = tmp_path / "pairs"
    folder.mkdir()
    for name, start in (("one", 0), ("two", 10)):
        write_video(folder / f"{name}.mkv", small_pair.foreground[start : start + 4])
        write_video(folder / f"{name}_background.mkv", small_pair.background[start : start + 6])
    out = tmp_path / "out"
    code = main(
        [
            "bgsub",
            str(folder),
            "--working_size",
            "160",
            "--num_workers",
            "0",
            "--no_progress",
            "--output_dir",
            str(out),
        ]
    )
    assert code == 0
    summary = json.loads((out / "bgsub.json").read_text())
    assert [p["name"] for p in summary["pairs"]] == ["one", "two"]
    assert read_video(out / "two_masks.mp4").shape[0] == 4
    assert "2 pairs (8 frames) processed" in capsys.readouterr().out


def test_bgsub_command_names_the_argument_that_is_not_a_video(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("\n".join(f"line {k}" for k in range(100)))
    video = write_video(tmp_path / "v.mkv", np.zeros((2, 16, 16, 3), np.uint8))
    code, err = _bgsub(str(video), str(notes), "--output_dir", str(tmp_path / "out"))
    assert code == 1 and "background_video: " in err and "is not a video" in err and "\n" not in err, err
    code, err = _bgsub(str(tmp_path), str(video), "--output_dir", str(tmp_path / "out"))
    assert code == 2 and "either a folder of video pairs, or a foreground and a background video" in err
    code, err = _bgsub(str(video), "--output_dir", str(tmp_path / "out"))
    assert code == 2 and "required: background_video" in err
