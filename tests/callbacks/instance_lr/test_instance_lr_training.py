import pytest
import torch
from ilr_testkit import TinyClassifier, args, blobs, parameters
from safetensors.torch import load_file
from transformers import Trainer

from hf_eff.callbacks.instance_lr import InstanceLRCallback, InstanceLRTrainer


def _train(tmp_path, callback, data=None, trainer_cls=InstanceLRTrainer, **overrides):
    torch.manual_seed(0)
    model = TinyClassifier()
    trainer = trainer_cls(
        model=model, args=args(tmp_path, **overrides), train_dataset=data or blobs(), callbacks=[callback]
    )
    trainer.train()
    return model, trainer


@pytest.mark.parametrize("accumulation", [1, 2])
def test_frozen_equal_rates_train_exactly_like_plain_trainer(tmp_path, accumulation):
    data = blobs()
    torch.manual_seed(0)
    plain = TinyClassifier()
    Trainer(
        model=plain,
        args=args(tmp_path / "plain", gradient_accumulation_steps=accumulation),
        train_dataset=data.remove_columns(["sample_idx"]),
    ).train()
    model, _ = _train(
        tmp_path / "ilr", InstanceLRCallback(update_rates=False), data, gradient_accumulation_steps=accumulation
    )
    expected, got = parameters(plain), parameters(model)
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


def test_flipped_labels_get_lower_rates(tmp_path):
    data = blobs(n=320, noise=0.4)
    callback = InstanceLRCallback(rate_lr=0.5, horizon=4, corrupt_column="is_corrupt")
    _, trainer = _train(tmp_path, callback, data, max_steps=160)
    corrupt = data["is_corrupt"][:].bool()
    rates = callback.rates
    assert rates[corrupt].mean() < 0.8 * rates[~corrupt].mean()
    logged = [entry for entry in trainer.state.log_history if "instance_lr/mean_corrupt" in entry][-1]
    assert logged["instance_lr/mean_corrupt"] == pytest.approx(rates[corrupt].mean().item(), rel=1e-5)


def test_only_rows_of_the_batch_change_and_stay_in_bounds(tmp_path):
    callback = InstanceLRCallback(rate_lr=5.0, min_rate=0.5, max_rate=2.0, horizon=1)
    _train(tmp_path, callback, max_steps=2, per_device_train_batch_size=8)
    changed = (callback.log_rates != 0).sum().item()
    assert 0 < changed <= 8  # the first batch's rows, updated against the second batch's gradient
    assert callback.rates.min() >= 0.5 - 1e-6 and callback.rates.max() <= 2.0 + 1e-6


def test_per_class_rates_and_export_column(tmp_path):
    data = blobs()
    callback = InstanceLRCallback(per_class=True, horizon=1)
    _train(tmp_path, callback, data)
    assert callback.class_log_rates.shape == (4,) and (callback.class_log_rates != 0).any()
    exported = callback.add_values_column(data.with_format(None))
    assert exported["instance_lr"] == pytest.approx(callback.rates[data["sample_idx"][:]].tolist())


@pytest.mark.parametrize("rebuild", [False, True], ids=["same-callback", "rebuilt-from-json"])
def test_rates_survive_save_and_resume(tmp_path, rebuild):
    """Resuming at step 4 ends at step 8 with the rates of an uninterrupted run; with
    restore_callback_states_from_checkpoint Trainer rebuilds the callback from its JSON args and it still works."""
    data = blobs()
    settings = {
        "max_steps": 8,
        "save_strategy": "steps",
        "save_steps": 4,
        "restore_callback_states_from_checkpoint": rebuild,
    }
    full = InstanceLRCallback(rate_lr=0.5, horizon=2, per_class=True)
    _train(tmp_path / "full", full, data, **settings)
    checkpoint = tmp_path / "full" / "checkpoint-4"
    stored = load_file(checkpoint / "instance_lr.safetensors")
    assert stored["log_rates"].shape == (len(data),)

    torch.manual_seed(0)
    trainer = InstanceLRTrainer(
        model=TinyClassifier(),
        args=args(tmp_path / "full", **settings),
        train_dataset=data,
        callbacks=[InstanceLRCallback(rate_lr=0.5, horizon=2, per_class=True)],
    )
    trainer.train(resume_from_checkpoint=str(checkpoint))
    resumed = trainer.per_sample_callback
    assert resumed.config == full.config
    torch.testing.assert_close(resumed.log_rates, full.log_rates, rtol=0, atol=1e-6)
    torch.testing.assert_close(resumed.class_log_rates, full.class_log_rates, rtol=0, atol=1e-6)


def test_plain_trainer_is_refused(tmp_path):
    with pytest.raises(ValueError, match="InstanceLRTrainerMixin"):
        _train(tmp_path, InstanceLRCallback(), trainer_cls=Trainer)


def test_missing_index_column_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no 'sample_idx' column"):
        _train(tmp_path, InstanceLRCallback(), blobs(index=False))


def test_out_of_range_indices_are_refused(tmp_path):
    data = blobs().with_format(None)
    data = data.remove_columns("sample_idx").add_column("sample_idx", [i + 1 for i in range(len(data))])
    with pytest.raises(ValueError, match=r"in \[0, 256\)"):
        _train(tmp_path, InstanceLRCallback(), data.with_format("torch"), max_steps=20)


def test_changed_dataset_size_is_refused(tmp_path):
    settings = {"max_steps": 4, "save_strategy": "steps", "save_steps": 4}
    _train(tmp_path, InstanceLRCallback(), blobs(n=256), **settings)
    trainer = InstanceLRTrainer(
        model=TinyClassifier(),
        args=args(tmp_path, **{**settings, "max_steps": 8}),
        train_dataset=blobs(n=200),
        callbacks=[InstanceLRCallback()],
    )
    with pytest.raises(ValueError, match="dataset changed"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "checkpoint-4"))
    reused = InstanceLRCallback()
    _train(tmp_path / "a", reused, blobs(n=256), max_steps=1)
    with pytest.raises(ValueError, match="size changed"):
        _train(tmp_path / "b", reused, blobs(n=200), max_steps=1)


def test_evaluation_pops_the_index(tmp_path):
    data = blobs()
    trainer = InstanceLRTrainer(
        model=TinyClassifier(),
        args=args(tmp_path),
        train_dataset=data,
        eval_dataset=data,
        callbacks=[InstanceLRCallback()],
    )
    metrics = trainer.evaluate()
    assert metrics["eval_loss"] > 0
