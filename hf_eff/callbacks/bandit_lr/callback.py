"""Hot swapping: choose the learning rate online, as a ``TrainerCallback``.

Bache, DeCoste & Smyth, "Hot Swapping for Online Adaptation of Optimization Hyperparameters" (arXiv 1412.6599):
one model is trained; training is cut into episodes; each episode plays one learning rate from a fixed set of arms
and is scored by the relative decrease of the objective over the episode. Two kinds of selector play the episodes:

- the racing selector (default, :mod:`~hf_eff.callbacks.bandit_lr.racing`): races arms from a shared snapshot and
  continues from the winning branch, judging progress races by the probe loss of each branch's tail-averaged
  weights; its plan (episode lengths, races) is derived from ``max_steps``, and over the run's last 20% the rate
  decays linearly toward 0 (a cooldown). Exploitation episodes whose loss diverges are undone and the rate steps
  down one grid notch; one that did not lower the loss is kept and the rate steps down too (before the cooldown).
  hf_eff's design, measured to beat the bandits below on ``hf-eff bench bandit_lr``;
- a bandit over per-episode rewards (:mod:`~hf_eff.callbacks.bandit_lr.policies`), the paper's discounted UCB
  (``bandit="ducb"``) and others, with episodes of ``episode_steps`` (derived from ``max_steps`` when unset). Optional
  backtracking rejects an episode that made the objective worse by restoring the weights and optimizer state.

Which parts are the paper's and which are hf_eff's choices (the paper's exact settings are unverified):

- the objective is, by default, the loss on a fixed probe set evaluated in eval mode at episode boundaries
  (``reward="probe_loss"``); ``reward="train_loss"`` uses the Trainer's logged training loss instead (cheaper,
  noisier, biased against large rates) [hf_eff choice];
- reward ``r = (L_start - L_end) / |L_start|``, clipped to ``[-reward_bound, reward_bound]`` so that one diverging
  episode cannot dominate an arm's statistics forever; a non-finite loss earns ``-reward_bound`` [hf_eff choice];
- rewards are divided by a running mean of their sizes, because progress per episode shrinks by orders of
  magnitude over training while the bandit compares arms played at different times [hf_eff choice];
- backtracking restores the episode start when ``L_end > L_start`` [hf_eff reading of the paper's rule], and an
  undone episode earns reward 0, the progress it really made [hf_eff choice].

Known limitation of the bandits (measured, see ``hf-eff bench bandit_lr``): per-episode rewards are myopic. A
smaller rate lowers the loss at once by damping SGD noise, a larger one pays off later, so a bandit drifts toward
smaller rates than the best fixed rate (short-horizon bias); racing places its comparisons where that bias is
harmless. Backtracking snapshots double parameter and optimizer-state memory; racing keeps up to two snapshots.

Every episode is logged (``bandit_lr/arm``, ``bandit_lr/reward``, per-arm ``bandit_lr/count@<lr>``, ...) into the
Trainer's log entries; ``learning_rate`` reports the rate really used. Integrations such as TensorBoard receive the
``bandit_lr/*`` metrics only with a Trainer that has :class:`~hf_eff.callbacks.base.HfEffTrainerMixin`, such as
:class:`~hf_eff.callbacks.bandit_lr.BanditLRTrainer` (they see a log entry before any user callback can add to it).

Distributed runs make identical decisions on every rank: the probe set is sharded over ranks and the losses are
all-reduced, the training loss is already gathered by the Trainer, and the policy's generator is seeded the same
everywhere. The bandit's statistics, generator state, current arm and episode progress are saved in every
checkpoint (``ExportableState``) and restored with ``TrainingArguments(restore_callback_states_from_checkpoint=True)``;
snapshots go into the checkpoint folder too (``bandit_lr_snapshot.safetensors``, and mid-race the best branch so far,
``bandit_lr_best_branch.safetensors``, and the running branch's tail average, ``bandit_lr_tail_average.safetensors``).
A run resumed from any checkpoint then trains exactly as the uninterrupted run would (bit for bit on CPU), except with
``reward="train_loss"`` resumed in the middle of an episode: Trainer does not checkpoint its running loss sum, so the
first episode's reward averages only the steps after the resume (save at multiples of ``episode_steps`` instead).
"""

import copy
import dataclasses
import logging
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from transformers import TrainerControl, TrainerState, TrainingArguments

from hf_eff.callbacks._state_file import load_state_file, save_state_file
from hf_eff.callbacks._utils import (
    build_probe_batches,
    evaluate_probe_loss,
    restore_training_state,
    snapshot_training_state,
    unwrap_scheduler,
)
from hf_eff.callbacks.bandit_lr.config import BanditLRConfig
from hf_eff.callbacks.bandit_lr.policies import BANDITS, BanditPolicy
from hf_eff.callbacks.bandit_lr.racing import AVERAGED_WEIGHTS, BOTH, DIVERGENCE, RacingPolicy
from hf_eff.callbacks.base import HfEffCallback, checkpoint_folder, resumed_checkpoint


logger = logging.getLogger(__name__)

__all__ = ["BanditLRCallback"]

SCALE_MOMENTUM = 0.9
SNAPSHOT_FILENAME = "bandit_lr_snapshot.safetensors"  # the episode-start snapshot, in each checkpoint folder
BEST_BRANCH_FILENAME = "bandit_lr_best_branch.safetensors"  # the best race branch so far, while racing
AVERAGE_FILENAME = "bandit_lr_tail_average.safetensors"  # the running race branch's tail-averaged weights
PROGRESS_KEYS = {"policy", "current_arm", "steps_in_episode", "episode_start_loss", "reward_scale", "history"}
# absent from checkpoints of older hf_eff versions
OPTIONAL_PROGRESS_KEYS = {"snapshot", "best_branch_loss", "averaged_steps", "probe_evaluations"}
EPISODES_PER_ARM = 8  # a bandit's derived episode length: max_steps / (EPISODES_PER_ARM * arms)
SETTINGS = {field.name for field in dataclasses.fields(BanditLRConfig)} - {"bandit"}


class BanditLRCallback(HfEffCallback):
    """Pick the learning rate of every episode by racing (default) or with a bandit (hot swapping).

    Args:
        arms: the learning rates to choose from (``mode="absolute"``), or the factors applied to the scheduled
            learning rate (``mode="multiplier"``). Positive, finite, distinct.
        episode_steps: optimizer steps per episode (one arm is played per episode) of a bandit; ``None`` (default)
            derives ``max_steps // (8 * len(arms))``. With racing: the opening race's look-ahead (``None``: derived).
        mode: ``"absolute"`` sets every param group's learning rate to the arm each step, times the racing
            selector's cooldown near the end (any schedule is ignored; use ``lr_scheduler_type="constant"``);
            ``"multiplier"`` multiplies the schedule's base rates by the arm, keeping its warm-up/decay shape (needs
            a ``LambdaLR``, which every Trainer schedule except ``reduce_lr_on_plateau`` and ``greedy`` is).
        bandit: ``"race"`` (default, :class:`~hf_eff.callbacks.bandit_lr.RacingPolicy`), a bandit name (``"ducb"``,
            the paper's, ``"swucb"``, ``"ucb1"``, ``"epsilon_greedy"``, ``"thompson"``, or one added with
            :func:`hf_eff.callbacks.bandit_lr.register_bandit`) or a ``BanditPolicy`` instance.
        bandit_kwargs: keyword arguments of the named policy (racing: ``exploration``, ``look_ahead``, ``races``,
            ``confirm``, ``judge``, ``cooldown``; D-UCB: ``{"gamma": 0.9, "xi": 0.6}``; the ``B`` of the UCB indices
            is their ``reward_bound``, 1 by default, the typical size of a scaled reward).
        reward: ``"probe_loss"`` (the relative decrease of the loss on ``probe_dataset``) or ``"train_loss"``
            (of the mean training loss logged by the Trainer; needs ``logging_steps == episode_steps``).
        probe_dataset: a small held-out set (``datasets.Dataset``, map-style torch dataset or list of examples)
            whose examples, collated, are valid ``model(**batch)`` inputs with labels. Columns the model's
            ``forward`` does not accept are dropped from a ``datasets.Dataset``.
        probe_batch_size: batch size of the probe evaluation.
        probe_collator: collate function for the probe set (default: ``transformers.default_data_collator``).
        backtrack: snapshot model, optimizer, scheduler (and AMP grad scaler) at each episode start and restore
            them when the episode made the objective worse. Doubles parameter and optimizer-state memory, and
            checkpoint size (the snapshot is saved with each checkpoint, so that a resumed run can still
            backtrack); not supported with DeepSpeed or FSDP (sharded state).
        reward_bound: rewards are clipped to ``[-reward_bound, reward_bound]``; with running scaling a typical
            reward is about 1 in size, so the default 3 only cuts outliers such as a diverging episode.
        rejected_reward: with backtracking, the reward of an undone episode: ``"zero"`` (default; the progress it
            really made) or ``"observed"`` (the relative change measured before undoing it, which penalises large
            rates for their noise although the damage was undone) [hf_eff choice].
        reward_scaling: ``"running"`` divides each relative decrease by a running mean of their sizes (momentum
            0.9), so that rewards keep a comparable scale although progress per episode shrinks by orders of
            magnitude over training [hf_eff choice]; ``"none"`` uses the raw relative decrease.
        seed: seed of the policy's random generator (the same on every rank).
        config: all of the above but the probe set and its collator as one :class:`BanditLRConfig` (then pass
            none of them separately).

    ``_restoring`` is internal: ``state()`` sets it in the arguments from which Trainer rebuilds this callback on
    resume; the rebuilt instance then takes the arguments JSON cannot hold (probe set, collator, an unregistered
    policy object) from the instance that was given to the Trainer.
    """

    live_attributes = ("probe_dataset", "probe_collator", "policy")

    def __init__(
        self,
        arms: Sequence[float] | None = None,
        episode_steps: int | None = None,
        *,
        mode: str = "absolute",
        bandit: str | BanditPolicy = "race",
        bandit_kwargs: dict[str, Any] | None = None,
        reward: str = "probe_loss",
        probe_dataset: Any = None,
        probe_batch_size: int = 64,
        probe_collator: Callable[[list], dict[str, Any]] | None = None,
        backtrack: bool = False,
        reward_bound: float = 3.0,
        reward_scaling: str = "running",
        rejected_reward: str = "zero",
        seed: int = 0,
        config: BanditLRConfig | None = None,
        _restoring: bool = False,
    ):
        super().__init__()
        if config is None:
            if arms is None:
                raise TypeError("BanditLRCallback needs arms (the learning rates to choose from) or a config")
            config = BanditLRConfig(
                arms,
                episode_steps,
                mode=mode,
                bandit=bandit,
                bandit_kwargs=bandit_kwargs or {},
                reward=reward,
                probe_batch_size=probe_batch_size,
                backtrack=backtrack,
                reward_bound=reward_bound,
                reward_scaling=reward_scaling,
                rejected_reward=rejected_reward,
                seed=seed,
            )
        elif not isinstance(config, BanditLRConfig):
            raise TypeError(f"config must be a BanditLRConfig, got {type(config).__name__}")
        elif arms is not None:
            raise ValueError("pass either arms and the other settings, or a config, not both")
        if config.bandit is None and not _restoring:
            raise ValueError(f"bandit must be a policy name {sorted(BANDITS)} or a BanditPolicy instance, got None")
        if config.reward == "probe_loss" and probe_dataset is None and not _restoring:
            raise ValueError(
                "reward='probe_loss' needs a probe_dataset (a small held-out set with labels, e.g. 256 examples of "
                "your validation split); pass one, or use reward='train_loss'"
            )
        if probe_dataset is not None and not _restoring and _length(probe_dataset) == 0:
            raise ValueError("probe_dataset is empty; it must hold at least one example")
        if probe_collator is not None and not callable(probe_collator):
            raise TypeError(f"probe_collator must be callable, got {type(probe_collator).__name__}")
        self.config = config
        self.probe_dataset = probe_dataset
        self.probe_collator = probe_collator
        self.policy = config.make_policy()

        # episode progress (saved in checkpoints)
        self.current_arm: int | None = None
        self.steps_in_episode = 0
        self.episode_start_loss: float | None = None
        self.reward_scale: float | None = None  # running mean of |relative decrease| (reward_scaling="running")
        self.history: list[dict[str, Any]] = []  # one record per finished episode
        self._pending_policy_state: dict[str, Any] | None = None
        self.best_branch_loss: float | None = None  # the score (a probe loss) of the best race branch so far
        self.averaged_steps = 0  # steps averaged into _average so far
        self.probe_evaluations = 0  # the probe set's evaluations so far (the selector's cost beyond training)
        # transient
        self._snapshot: dict[str, Any] | None = None
        self._best_branch: dict[str, Any] | None = None  # model and optimizer at the end of the best race branch
        self._average: dict[str, torch.Tensor] | None = None  # mean weights over the running branch's last half
        self._derived_episode_steps: int | None = None
        self._snapshot_in_checkpoint = False  # the checkpoint being resumed holds a snapshot file
        self._probe_batches: list[dict[str, Any]] | None = None
        self._awaiting_train_loss = False
        self._warned_missing_snapshot = False
        self._global_step = 0  # the Trainer's, at the last event: the racing plan's cooldown follows it

    def __getattr__(self, name: str) -> Any:
        # the settings stay readable as attributes (``callback.arms``), as before they moved into ``config``
        if name in SETTINGS and "config" in self.__dict__:
            return getattr(self.config, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ------------------------------------------------------------------------------------------------------------
    # checkpointing (ExportableState)
    def state(self) -> dict[str, Any]:
        return {
            "args": {**self.config.to_json_args(self.policy), "_restoring": True},
            "attributes": {"progress": self.progress},
        }

    @property
    def progress(self) -> dict[str, Any]:
        """The JSON-serialisable training state: policy statistics and generator, current arm, episode progress, and
        whether an episode-start snapshot exists (saved next to the checkpoint, see :meth:`on_save`)."""
        return {
            "policy": self.policy.state_dict() if self.policy is not None else self._pending_policy_state,
            "current_arm": self.current_arm,
            "steps_in_episode": self.steps_in_episode,
            "episode_start_loss": self.episode_start_loss,
            "reward_scale": self.reward_scale,
            "history": copy.deepcopy(self.history),
            "snapshot": self._snapshot is not None,
            "best_branch_loss": self.best_branch_loss if self._best_branch is not None else None,
            "averaged_steps": self.averaged_steps,
            "probe_evaluations": self.probe_evaluations,
        }

    @progress.setter
    def progress(self, value: dict[str, Any]) -> None:
        # "snapshot" is absent from checkpoints written before snapshots were checkpointed
        if not isinstance(value, dict) or not PROGRESS_KEYS <= set(value) <= PROGRESS_KEYS | OPTIONAL_PROGRESS_KEYS:
            raise ValueError(
                f"BanditLRCallback progress must have the keys {sorted(PROGRESS_KEYS)} (and optionally "
                f"{sorted(OPTIONAL_PROGRESS_KEYS)}), got {value!r:.200}"
            )
        arm = value["current_arm"]
        if arm is not None and not (isinstance(arm, int) and 0 <= arm < len(self.config.arms)):
            raise ValueError(f"saved current_arm {arm!r} does not index the {len(self.config.arms)} arms")
        self.current_arm = arm
        self.steps_in_episode = int(value["steps_in_episode"])
        self.episode_start_loss = value["episode_start_loss"]
        self.reward_scale = value["reward_scale"]
        self.history = copy.deepcopy(value["history"])
        self._snapshot_in_checkpoint = bool(value.get("snapshot", False))
        self.best_branch_loss = value.get("best_branch_loss")
        self.averaged_steps = int(value.get("averaged_steps", 0))
        self.probe_evaluations = int(value.get("probe_evaluations", 0))
        if self.policy is not None and value["policy"] is not None:
            self.policy.load_state_dict(value["policy"])
        else:
            self._pending_policy_state = value["policy"]

    # ------------------------------------------------------------------------------------------------------------
    # public read-outs
    @property
    def current_lr(self) -> float | None:
        """The arm being played (a learning rate, or a multiplier in multiplier mode)."""
        return None if self.current_arm is None else self.config.arms[self.current_arm]

    @property
    def arm_trace(self) -> list[float]:
        """The arm value played in each finished episode, in order."""
        return [record["arm_value"] for record in self.history]

    @property
    def kept_steps(self) -> int:
        """Optimizer steps of the trajectory the run continues from, so far: every finished episode's steps except
        those of discarded race branches and of undone (backtracked) episodes."""
        kept, previous_step = 0, 0
        for record in self.history:  # "steps" is absent from the records of older hf_eff versions
            if record.get("kept", True) and not record["backtracked"]:
                kept += record.get("steps", record["global_step"] - previous_step)
            previous_step = record["global_step"]
        return kept

    def max_steps_for(self, train_steps: int) -> int:
        """The ``max_steps`` to set so that the run keeps ``train_steps`` optimizer steps of trajectory.

        The racing selector's races happen inside ``max_steps``: the discarded branches use up Trainer steps, so a
        run of ``T`` steps trains only about 70% of ``T`` along the trajectory it ends with. Set
        ``TrainingArguments(max_steps=selector.max_steps_for(T))`` to train ``T`` steps like the fixed-rate run the
        selector replaces, with the exploration paid on top (see :meth:`RacingPolicy.max_steps_for`, which this
        asks with this callback's arms and ``episode_steps``). A bandit without backtracking discards nothing:
        ``train_steps`` is returned. With ``backtrack=True`` a bandit discards the episodes it undoes, which depend
        on the losses seen, so no ``max_steps`` can be known beforehand: that raises ``ValueError``.
        """
        policy = self._ensure_policy()
        if isinstance(policy, RacingPolicy):
            return policy.max_steps_for(train_steps, list(self.config.arms), look_ahead=self.config.episode_steps)
        if not isinstance(train_steps, int) or isinstance(train_steps, bool) or train_steps < 1:
            raise ValueError(f"train_steps must be a positive int (steps of kept trajectory), got {train_steps!r}")
        if self.config.backtrack:
            raise ValueError(
                "max_steps_for: with backtrack=True a bandit discards the episodes it undoes, which depend on the "
                "losses seen during training, so the steps it keeps cannot be planned; set max_steps yourself"
            )
        return train_steps

    # ------------------------------------------------------------------------------------------------------------
    # Trainer events
    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model=None, **kwargs
    ):
        super().on_train_begin(args, state, control, model=model, **kwargs)  # adopts the live objects
        self._global_step = state.global_step
        if isinstance(self._ensure_policy(), RacingPolicy):  # exploration matched to the run's length
            self.policy.plan_budget(state.max_steps, list(self.config.arms), look_ahead=self.config.episode_steps)
        self._derived_episode_steps = max(1, state.max_steps // (EPISODES_PER_ARM * len(self.config.arms)))
        self._check_training_setup(args, state, kwargs.get("lr_scheduler"))
        self._check_train_loss_logging(args)
        optimizer, lr_scheduler = kwargs.get("optimizer"), kwargs.get("lr_scheduler")
        self._awaiting_train_loss = False
        self._snapshot = self._best_branch = self._average = None
        if self.current_arm is None:  # a fresh run (a resumed one restored its episode progress)
            start_loss = self._probe_loss(model) if self.config.reward == "probe_loss" else None
            self._start_episode(start_loss, model, optimizer, lr_scheduler)
        elif self._snapshot_in_checkpoint:
            self._snapshot = self._load_snapshot(args, state)
            if self.best_branch_loss is not None:
                self._best_branch = self._load_snapshot(args, state, BEST_BRANCH_FILENAME)
            if self.averaged_steps:  # inside the averaged tail of a race branch
                self._average = self._load_snapshot(args, state, AVERAGE_FILENAME, what="tail average")["model"]
        elif self.config.backtrack and self.steps_in_episode == 0:  # a checkpoint written before snapshots were saved
            self._snapshot = snapshot_training_state(model, optimizer, lr_scheduler)
        self._snapshot_in_checkpoint = False
        self._apply_lr(optimizer, lr_scheduler)

    def on_step_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        # every step: a LambdaLR scheduler rewrites the learning rate after each optimizer step
        self._global_step = state.global_step
        self._apply_lr(optimizer, lr_scheduler)

    def on_step_end(self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kwargs):
        self._global_step = state.global_step
        self.steps_in_episode += 1
        if isinstance(self.policy, RacingPolicy) and self.policy.racing:
            self._observe_branch_tail(model)
        if self.steps_in_episode < self.episode_length:
            return
        if isinstance(self.policy, RacingPolicy) and self.policy.racing:
            self._finish_race_branch(state, model, optimizer, lr_scheduler)
            control.should_log = True
        elif self.config.reward == "probe_loss":
            self._finish_episode(self._probe_loss(model), state, model, optimizer, lr_scheduler)
            control.should_log = True  # log every episode: its metrics join the Trainer's next log entry
        else:
            self._awaiting_train_loss = True  # the Trainer logs this episode's mean loss right after this event

    def on_log(self, args, state, control, logs=None, model=None, optimizer=None, lr_scheduler=None, **kwargs):
        if self._awaiting_train_loss and logs is not None and "loss" in logs:
            self._awaiting_train_loss = False
            self._finish_episode(float(logs["loss"]), state, model, optimizer, lr_scheduler)
        super().on_log(args, state, control, logs=logs, **kwargs)  # the episode's metrics join this entry

    def on_save(self, args, state, control, **kwargs):
        # the checkpoint's trainer_state.json (written just before) says whether a snapshot belongs to it
        metadata = {"global_step": str(state.global_step)}
        if self._snapshot is not None and args.should_save:
            save_state_file(os.path.join(checkpoint_folder(args, state), SNAPSHOT_FILENAME), self._snapshot, metadata)
        if self._best_branch is not None and args.should_save:
            path = os.path.join(checkpoint_folder(args, state), BEST_BRANCH_FILENAME)
            save_state_file(path, self._best_branch, metadata)
        if self._average is not None and args.should_save:
            path = os.path.join(checkpoint_folder(args, state), AVERAGE_FILENAME)
            save_state_file(path, {"model": self._average}, metadata)

    def on_train_end(self, args, state, control, model=None, optimizer=None, **kwargs):
        # a run that ends inside a race (max_steps changed on resume) keeps the better of live and best finished
        if (
            self._best_branch is not None
            and model is not None
            and not self._probe_loss(model) <= self.best_branch_loss
        ):
            restore_training_state(self._best_branch, model, optimizer)
        self._snapshot = self._best_branch = self._average = None

    def _load_snapshot(
        self, args: TrainingArguments, state: TrainerState, filename: str = SNAPSHOT_FILENAME, what: str = "snapshot"
    ) -> dict[str, Any]:
        """A snapshot saved with the checkpoint being resumed (errors name the file)."""
        folder = resumed_checkpoint(args, state) or checkpoint_folder(args, state)
        path = os.path.join(folder, filename)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"BanditLRCallback: the checkpoint of step {state.global_step} was saved with a snapshot (an episode "
                f"start with backtrack=True, or a race), but {path} does not exist. If the checkpoint was moved out of "
                "output_dir, resume with BanditLRTrainer (or any Trainer with HfEffTrainerMixin), which tells "
                "callbacks the folder it resumes from"
            )
        snapshot, metadata = load_state_file(path, what=f"BanditLRCallback's {what}")
        if metadata.get("global_step") != str(state.global_step):
            raise ValueError(
                f"{path} holds the snapshot saved at step {metadata.get('global_step')}, but the run resumes at step "
                f"{state.global_step}"
            )
        expected = {"model"} if filename == AVERAGE_FILENAME else {"model", "optimizer", "scheduler", "scaler"}
        if not isinstance(snapshot, dict) or set(snapshot) != expected:
            found = sorted(snapshot) if isinstance(snapshot, dict) else type(snapshot).__name__
            raise ValueError(f"{path} does not hold a {what} (found {found!r:.200})")
        return snapshot

    # ------------------------------------------------------------------------------------------------------------
    # episodes
    @property
    def episode_length(self) -> int:
        """Steps of the current episode: a race branch's look-ahead or an exploitation stretch when racing, else
        ``episode_steps`` (derived from ``max_steps`` when unset: about 8 episodes per arm)."""
        if isinstance(self.policy, RacingPolicy):
            return self.policy.episode_steps()
        return self.config.episode_steps or self._derived_episode_steps or 1

    def _start_episode(self, start_loss, model, optimizer, lr_scheduler) -> None:
        policy = self._ensure_policy()
        self.current_arm = int(policy.select())
        self.steps_in_episode = 0
        self.episode_start_loss = start_loss
        if isinstance(policy, RacingPolicy) and policy.racing:
            if policy.branch == 0:  # a race starts: every branch starts from here (later ones are restored to it)
                self._snapshot = snapshot_training_state(model, optimizer)  # the schedule follows the global step
        elif isinstance(policy, RacingPolicy):  # an exploitation episode, undone if the loss rises
            self._snapshot = snapshot_training_state(model, optimizer)
        elif self.config.backtrack:
            self._snapshot = snapshot_training_state(model, optimizer, lr_scheduler)
        self._apply_lr(optimizer, lr_scheduler)

    def _finish_episode(self, end_loss: float, state, model, optimizer, lr_scheduler) -> None:
        start_loss, arm = self.episode_start_loss, self.current_arm
        worse = start_loss is not None and not end_loss <= start_loss  # NaN counts as worse
        backtracked = False
        racing = isinstance(self.policy, RacingPolicy)  # exploiting a race winner: guarded against divergence
        diverged = False
        if racing and start_loss is not None:
            first_loss = self.history[0]["start_loss"]
            diverged = not end_loss - start_loss <= DIVERGENCE * max(first_loss - start_loss, 0.0)
            worse = worse if self.config.backtrack else diverged
        if (self.config.backtrack or racing) and worse:
            if self._snapshot is not None:
                restore_training_state(self._snapshot, model, optimizer, lr_scheduler)
                backtracked = True
            elif not self._warned_missing_snapshot:
                self._warned_missing_snapshot = True
                logger.warning(
                    "BanditLRCallback: an episode made the objective worse but cannot be backtracked because the "
                    "run was resumed in its middle from a checkpoint written without the episode-start snapshot "
                    "(by an hf_eff version that did not save it)"
                )
        self._snapshot = None
        if start_loss is None:
            reward = None
        elif racing:
            reward = self._relative_decrease(start_loss, end_loss)  # negative: the policy steps down
        elif backtracked and self.config.rejected_reward == "zero":
            reward = 0.0  # the episode was undone: the progress it really made is none
        else:
            reward = self._reward(start_loss, end_loss)
        if reward is not None:
            self.policy.update(arm, reward)
        if racing and (diverged or self.policy.steps_down_after(reward, state.global_step)):
            self.policy.step_down()
        self._record_episode(state, optimizer, end_loss, reward, backtracked=backtracked)
        # the next episode starts from the restored weights (whose loss is start_loss) or from the new ones
        next_start = start_loss if backtracked else (end_loss if math.isfinite(end_loss) else None)
        self._start_episode(next_start, model, optimizer, lr_scheduler)

    def _finish_race_branch(self, state, model, optimizer, lr_scheduler) -> None:
        """Score the branch against the race start, keep it if it is the best so far, and either go back to the
        race start for the next branch or, after the last one, continue from the winning branch."""
        policy, start_loss, arm = self.policy, self.episode_start_loss, self.current_arm
        branch = policy.branch
        scored_by = policy.branch_score
        end_loss, score = self._score_branch(model)
        reward = self._relative_decrease(start_loss, score)
        end_reward = self._relative_decrease(start_loss, end_loss) if scored_by == BOTH else None
        policy.update(arm, reward, end_reward)
        # the best branch so far; once the race is over, the one the policy chose
        beats_the_best = policy.best_branch() == branch if policy.racing else policy.last_winner == arm
        record = self._record_episode(state, optimizer, end_loss, reward, backtracked=False, branch=branch)
        if score is not end_loss:
            record["score_loss"] = score if math.isfinite(score) else None
        if policy.racing and policy.branch > 0:  # more branches to run, all from the race start
            if beats_the_best:
                self._best_branch = snapshot_training_state(model, optimizer)
                self.best_branch_loss = score
            restore_training_state(self._snapshot, model, optimizer)
            next_start = start_loss
        else:  # the race is over: continue from the winner's branch
            if not beats_the_best:
                restore_training_state(self._best_branch, model, optimizer)
                end_loss = self.best_branch_loss if score is end_loss else None  # its end, if that was its score
            # the winner's own probe loss starts the next episode (a tail-judged branch had only its score)
            next_start = self._probe_loss(model) if end_loss is None else end_loss
            winners = [r for r in self.history[len(self.history) - branch - 1 :] if r["arm"] == policy.last_winner]
            winners[0]["kept"] = True
            record["race_winner"] = self.config.arms[policy.last_winner]
            if self.config.backtrack and not next_start <= start_loss:  # even the winner made things worse
                restore_training_state(self._snapshot, model, optimizer)
                next_start, record["backtracked"] = start_loss, True
            self._snapshot = self._best_branch = None
            self.best_branch_loss = None
        self._start_episode(next_start if math.isfinite(next_start) else None, model, optimizer, lr_scheduler)

    def _score_branch(self, model) -> tuple[float | None, float]:
        """(probe loss at the branch's end, or ``None`` where not needed; the loss that judges the branch)."""
        if self.policy.branch_score in (AVERAGED_WEIGHTS, BOTH):
            score = self._averaged_probe_loss(model)
            self._average, self.averaged_steps = None, 0
            return (self._probe_loss(model) if self.policy.branch_score == BOTH else None), score
        end_loss = self._probe_loss(model)
        return end_loss, end_loss

    def _observe_branch_tail(self, model) -> None:
        """After each step in the last half of a race branch judged by its averaged weights: add the weights to
        their running mean."""
        length = self.episode_length
        if self.policy.branch_score in (AVERAGED_WEIGHTS, BOTH) and self.steps_in_episode > length - length // 2:
            self.averaged_steps += 1
            with torch.no_grad():
                if self._average is None:
                    self._average = {name: p.detach().clone() for name, p in model.named_parameters()}
                else:
                    for name, p in model.named_parameters():
                        self._average[name].add_(p.detach() - self._average[name], alpha=1 / self.averaged_steps)

    def _averaged_probe_loss(self, model) -> float:
        """The probe loss of the branch's tail-averaged weights; the live weights are put back afterwards."""
        with torch.no_grad():
            live = {name: p.detach().clone() for name, p in model.named_parameters()}
            for name, p in model.named_parameters():
                p.copy_(self._average[name])
            loss = self._probe_loss(model)
            for name, p in model.named_parameters():
                p.copy_(live[name])
        return loss

    def _record_episode(self, state, optimizer, end_loss, reward, *, backtracked, branch=None) -> dict[str, Any]:
        record = {
            "episode": len(self.history),
            "global_step": state.global_step,
            "steps": self.steps_in_episode,
            "arm": self.current_arm,
            "arm_value": self.config.arms[self.current_arm],
            "lr": _first_lr(optimizer),
            "start_loss": self.episode_start_loss,
            "end_loss": end_loss if end_loss is not None and math.isfinite(end_loss) else None,
            "reward": reward,
            "backtracked": backtracked,
        }
        if branch is not None:  # a race branch; "kept" becomes True on the winner's record when the race ends
            record.update(branch=branch, kept=False)
        self.history.append(record)
        self.queue_logs(self._episode_logs(record))  # bandit_lr/arm, .../reward, per arm .../count@<lr>, ...
        return record

    def _relative_decrease(self, start_loss: float | None, end_loss: float) -> float:
        """A race branch's score: relative decrease from the race start, unscaled (branches share the start),
        clipped to ``reward_bound``; a non-finite loss scores ``-reward_bound``."""
        bound = self.config.reward_bound
        if start_loss is None or not math.isfinite(end_loss):
            return -bound
        decrease = (start_loss - end_loss) / abs(start_loss) if start_loss else -float(end_loss > 0)
        return max(-bound, min(bound, decrease))

    def _reward(self, start_loss: float, end_loss: float) -> float:
        if not math.isfinite(end_loss):
            return -self.config.reward_bound
        if start_loss == 0:
            return 0.0 if end_loss == 0 else -self.config.reward_bound
        reward = (start_loss - end_loss) / abs(start_loss)
        if self.config.reward_scaling == "running":
            scale = self.reward_scale if self.reward_scale else abs(reward) or 1.0
            self.reward_scale = SCALE_MOMENTUM * scale + (1 - SCALE_MOMENTUM) * abs(reward)
            reward = reward / scale
        return max(-self.config.reward_bound, min(self.config.reward_bound, reward))

    def _episode_logs(self, record: dict[str, Any]) -> dict[str, float]:
        logs = {
            "bandit_lr/arm": float(record["arm"]),
            "bandit_lr/arm_value": float(record["arm_value"]),
            "bandit_lr/backtracked": float(record["backtracked"]),
        }
        if record["reward"] is not None:
            logs["bandit_lr/reward"] = float(record["reward"])
        if record["end_loss"] is not None:
            logs[f"bandit_lr/{self.config.reward}"] = float(record["end_loss"])
        for value, stats in zip(self.config.arms, self.policy.arm_statistics()):
            for name, number in stats.items():
                if math.isfinite(number):
                    logs[f"bandit_lr/{name}@{value:g}"] = float(number)
        return logs

    def _ensure_policy(self) -> BanditPolicy:
        if self.policy is None:
            raise ValueError(
                "BanditLRCallback has no bandit policy: it was restored from a checkpoint made with an unregistered "
                "BanditPolicy instance; pass the callback with that instance to the Trainer again, or register the "
                "policy class with hf_eff.callbacks.bandit_lr.register_bandit"
            )
        if self._pending_policy_state is not None:
            self.policy.load_state_dict(self._pending_policy_state)
            self._pending_policy_state = None
        return self.policy

    # ------------------------------------------------------------------------------------------------------------
    # learning rate
    def _apply_lr(self, optimizer, lr_scheduler) -> None:
        if optimizer is None or self.current_arm is None:
            return
        arm = self.config.arms[self.current_arm]
        if self.config.mode == "absolute" and isinstance(self.policy, RacingPolicy):
            arm *= self.policy.lr_factor(self._global_step)  # the racing plan's cooldown (a schedule has its own)
        scheduler = unwrap_scheduler(lr_scheduler)
        for i, group in enumerate(optimizer.param_groups):
            if self.config.mode == "absolute":
                group["lr"] = arm
                if scheduler is not None and hasattr(scheduler, "base_lrs"):
                    scheduler.base_lrs[i] = arm  # a constant schedule then reproduces the arm by itself
            else:
                base_lr = arm * group["initial_lr"]
                scheduler.base_lrs[i] = base_lr
                group["lr"] = base_lr * scheduler.lr_lambdas[i](scheduler.last_epoch)
        if scheduler is not None and hasattr(scheduler, "_last_lr"):
            # what Trainer logs as "learning_rate": keep it equal to the rate really used
            scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]

    # ------------------------------------------------------------------------------------------------------------
    # the objective
    def _probe_loss(self, model: nn.Module) -> float:
        """Mean loss over the probe set, in eval mode, sharded over ranks and all-reduced."""
        if self._probe_batches is None:
            self._probe_batches = build_probe_batches(
                self.probe_dataset, model, self.config.probe_batch_size, self.probe_collator
            )
        self.probe_evaluations += 1
        return evaluate_probe_loss(model, self._probe_batches).mean

    # ------------------------------------------------------------------------------------------------------------
    # checks and plumbing
    def _check_train_loss_logging(self, args: TrainingArguments) -> None:
        if self.config.reward == "train_loss" and (
            _enum_value(args.logging_strategy) != "steps" or args.logging_steps != self.episode_length
        ):
            raise ValueError(
                "reward='train_loss' reads the mean training loss the Trainer logs, so it needs "
                f"logging_strategy='steps' and logging_steps == episode_steps ({self.episode_length}); got "
                f"logging_strategy={_enum_value(args.logging_strategy)!r}, logging_steps={args.logging_steps}"
            )

    def _check_training_setup(self, args: TrainingArguments, state: TrainerState, lr_scheduler) -> None:
        if self.config.reward == "probe_loss" and self.probe_dataset is None:
            raise ValueError(
                "reward='probe_loss' needs a probe_dataset; after resuming with "
                "restore_callback_states_from_checkpoint=True, give the Trainer the callback (with its probe_dataset) "
                "exactly as in the original run"
            )
        if (self.config.backtrack or self.config.races) and (args.deepspeed or args.fsdp):
            raise ValueError(
                "backtrack=True and the racing selector snapshot the optimizer state, which is sharded with DeepSpeed "
                "or FSDP; use bandit='ducb' without backtracking there"
            )
        scheduler = unwrap_scheduler(lr_scheduler)
        if self.config.mode == "multiplier" and not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
            raise TypeError(
                "mode='multiplier' scales the base rates of a LambdaLR schedule (every Trainer lr_scheduler_type but "
                f"reduce_lr_on_plateau and greedy); got {type(scheduler).__name__}. Use mode='absolute' instead"
            )
        if self.config.mode == "absolute" and _enum_value(args.lr_scheduler_type) != "constant":
            logger.warning(
                "BanditLRCallback(mode='absolute') sets the learning rate itself every step, so lr_scheduler_type=%r "
                "has no effect; use mode='multiplier' to keep the schedule's shape",
                _enum_value(args.lr_scheduler_type),
            )
        if self.config.reward == "train_loss" and self.current_arm is not None and self.steps_in_episode > 0:
            logger.warning(
                "BanditLRCallback(reward='train_loss') resumed %d steps into an episode: Trainer does not checkpoint "
                "its running loss, so this episode's reward averages only the steps after the resume and the run "
                "will not match an uninterrupted one exactly. Save at multiples of episode_steps (%d) to avoid this",
                self.steps_in_episode,
                self.episode_length,
            )
        if state.global_step > 0 and self.current_arm is None and not args.restore_callback_states_from_checkpoint:
            logger.warning(
                "BanditLRCallback: resuming at step %d with a fresh bandit. Set "
                "TrainingArguments(restore_callback_states_from_checkpoint=True) to continue with the saved bandit "
                "statistics, arm and generator state",
                state.global_step,
            )


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


def _length(dataset: Any) -> int | None:
    try:
        return len(dataset)
    except TypeError:
        return None


def _first_lr(optimizer) -> float | None:
    return None if optimizer is None else float(optimizer.param_groups[0]["lr"])
