"""The bandit_lr package's public surface: BanditLRConfig, the callback built from it, and the old module paths."""

import importlib
import json
import sys

import pytest
import torch

import hf_eff
from hf_eff.callbacks import bandit_lr
from hf_eff.callbacks.bandit_lr import BanditLRCallback, BanditLRConfig, DiscountedUCB


PROBE = [{"features": torch.zeros(2), "labels": torch.tensor(0)}]


def test_a_config_builds_the_same_callback_as_keyword_arguments():
    settings = {"episode_steps": 7, "mode": "multiplier", "bandit": "swucb", "bandit_kwargs": {"window": 20}}
    from_kwargs = BanditLRCallback([0.5, 1.0], probe_dataset=PROBE, seed=3, **settings)
    config = BanditLRConfig([0.5, 1.0], seed=3, **settings)
    from_config = BanditLRCallback(config=config, probe_dataset=PROBE)
    assert json.dumps(from_config.state()) == json.dumps(from_kwargs.state())
    assert from_config.config is config and from_config.episode_steps == 7


def test_config_checks_its_settings_and_the_callback_its_arguments():
    with pytest.raises(ValueError, match="mode must be one of"):
        BanditLRConfig([0.1], mode="relative")
    with pytest.raises(ValueError, match="the bandit has 3 arms but 2 arms were given"):
        BanditLRConfig([0.1, 0.2], bandit=DiscountedUCB(3))
    with pytest.raises(TypeError, match="needs arms"):
        BanditLRCallback(probe_dataset=PROBE)
    with pytest.raises(ValueError, match="not both"):
        BanditLRCallback([0.1], config=BanditLRConfig([0.1]), probe_dataset=PROBE)
    with pytest.raises(TypeError, match="config must be a BanditLRConfig"):
        BanditLRCallback(config={"arms": [0.1]}, probe_dataset=PROBE)


@pytest.mark.parametrize(
    ("old_path", "names"),
    [
        ("hf_eff.callbacks.bandits", ["BanditPolicy", "DiscountedUCB", "make_bandit", "register_bandit", "BANDITS"]),
        ("hf_eff.callbacks.bandit_trainer", ["BanditLRTrainer", "BanditLRTrainerMixin"]),
    ],
)
def test_old_module_paths_warn_and_still_work(old_path, names):
    sys.modules.pop(old_path, None)  # the warning fires on import
    with pytest.warns(DeprecationWarning, match=f"{old_path} is deprecated"):
        module = importlib.import_module(old_path)
    for name in names:
        assert getattr(module, name) is getattr(bandit_lr, name)


def test_top_level_names_are_the_package_classes():
    assert hf_eff.BanditLRCallback is BanditLRCallback
    assert hf_eff.BanditLRTrainer is bandit_lr.BanditLRTrainer
