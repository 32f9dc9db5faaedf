"""Many pairs: a folder of ``NAME`` + ``NAME_background`` videos, processed in worker processes from disk."""

import json

import numpy as np
import pytest

from hf_eff.video import read_video, write_video
from hf_eff.video.batch import VideoPair, find_pairs, process_pairs


@pytest.fixture(scope="module")
def pair_folder(tmp_path_factory, small_pair):
    folder = tmp_path_factory.mktemp("pairs")
    write_video(folder / "a.mkv", small_pair.foreground[:6])
    write_video(folder / "a_background.mkv", small_pair.background[:8])
    write_video(folder / "b.mkv", small_pair.foreground[8:12])
    write_video(folder / "b_background.mkv", small_pair.background[8:15])
    (folder / "notes.txt").write_text("not a video, ignored")
    return folder


def test_find_pairs_by_name(pair_folder):
    pairs = find_pairs(pair_folder)
    assert [p.name for p in pairs] == ["a", "b"]
    assert pairs[0].video.name == "a.mkv" and pairs[0].background_video.name == "a_background.mkv"


def test_find_pairs_refuses_unpaired_videos_and_empty_folders(tmp_path, pair_folder):
    with pytest.raises(ValueError, match="no video pairs found"):
        find_pairs(tmp_path)
    write_video(tmp_path / "c.mkv", np.zeros((2, 16, 16, 3), np.uint8))
    write_video(tmp_path / "c_background.mkv", np.zeros((2, 16, 16, 3), np.uint8))
    write_video(tmp_path / "lonely.mkv", np.zeros((2, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match=r"videos without their pair: \['lonely.mkv'\]"):
        find_pairs(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        find_pairs(tmp_path / "nope")


def _check_outputs(summaries, out, small_pair):
    assert [s["name"] for s in summaries] == ["a", "b"] and [s["frames"] for s in summaries] == [6, 4]
    masks = read_video(out / "a_masks.mp4")[..., 0] > 127
    assert masks.shape == (6, *small_pair.masks.shape[1:])
    overlap = (masks & small_pair.masks[:6]).sum() / small_pair.masks[:6].sum()
    assert overlap > 0.8  # the written masks cover the object
    json.dumps(summaries)  # summaries are plain JSON


def test_process_pairs_in_this_process(tmp_path, pair_folder, small_pair):
    summaries = process_pairs(find_pairs(pair_folder), tmp_path, {"working_size": 160}, num_workers=0, progress=False)
    _check_outputs(summaries, tmp_path, small_pair)


@pytest.mark.multiprocess
def test_process_pairs_in_two_worker_processes(tmp_path, pair_folder, small_pair):
    summaries = process_pairs(find_pairs(pair_folder), tmp_path, {"working_size": 160}, num_workers=2, progress=False)
    _check_outputs(summaries, tmp_path, small_pair)


def test_a_failing_pair_is_named_and_bad_settings_fail_before_any_work(tmp_path, pair_folder):
    text = tmp_path / "c.mkv"
    text.write_text("these bytes are no video")
    bad = [VideoPair("c", text, pair_folder / "a_background.mkv")]
    with pytest.raises(ValueError, match="^c: video: cannot read"):
        process_pairs(bad, tmp_path / "out", {"working_size": 160}, num_workers=0, progress=False)
    with pytest.raises(ValueError, match="verify_window"):
        process_pairs(find_pairs(pair_folder), tmp_path / "out2", {"verify_window": -1}, progress=False)
    assert not (tmp_path / "out2").exists()
    with pytest.raises(ValueError, match="num_workers"):
        process_pairs([], tmp_path, num_workers=-1, progress=False)
