"""What a recompute must reproduce from the forward pass: RNG draws, autocast, and no second BatchNorm update.

A reversible stack recomputes every transform in backward. For the recomputed values (and therefore the
reconstructed inputs and the gradients) to match the forward pass exactly:

- every transform must see the random-number state it saw in forward (dropout, stochastic depth): the state is
  stashed per transform, and consecutive transforms that draw nothing share one stashed state;
- the recompute must run under the autocast state of the forward pass;
- BatchNorm running statistics must be updated once per step: during recompute every ``_BatchNorm`` in training
  mode normalises with batch statistics but leaves its running buffers untouched.

Custom stateful layers can ask :func:`is_recomputing` to skip their own side effects.
"""

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


_state = threading.local()


def is_recomputing() -> bool:
    """True while a reversible stack recomputes transforms in backward (side effects must not repeat)."""
    return getattr(_state, "recomputing", False)


@contextlib.contextmanager
def recomputing(modules: Iterable[nn.Module]) -> Iterator[None]:
    """Mark a recompute and keep BatchNorm running statistics of ``modules`` (and their children) frozen."""
    frozen = [
        m
        for root in modules
        for m in root.modules()
        if isinstance(m, _BatchNorm) and m.training and m.track_running_stats
    ]
    previous = is_recomputing()
    _state.recomputing = True
    for m in frozen:
        m.track_running_stats = False  # train-mode BN then uses batch statistics and updates no buffer
    try:
        yield
    finally:
        for m in frozen:
            m.track_running_stats = True
        _state.recomputing = previous


@dataclass(frozen=True)
class AutocastState:
    """The autocast settings of one device type, captured in forward and re-entered in backward."""

    device_type: str
    enabled: bool
    dtype: torch.dtype
    cpu_enabled: bool
    cpu_dtype: torch.dtype

    @classmethod
    def capture(cls, device_type: str) -> "AutocastState":
        if not torch.amp.is_autocast_available(device_type):  # e.g. meta tensors
            return cls("cpu", False, torch.bfloat16, torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))
        return cls(
            device_type,
            torch.is_autocast_enabled(device_type),
            torch.get_autocast_dtype(device_type),
            torch.is_autocast_enabled("cpu"),
            torch.get_autocast_dtype("cpu"),
        )

    def context(self) -> contextlib.AbstractContextManager:
        stack = contextlib.ExitStack()
        stack.enter_context(torch.autocast(self.device_type, dtype=self.dtype, enabled=self.enabled))
        if self.device_type != "cpu":
            stack.enter_context(torch.autocast("cpu", dtype=self.cpu_dtype, enabled=self.cpu_enabled))
        return stack


class RNGTape:
    """Random-number states stashed per transform key in forward, restored per key in recompute.

    CPU state is always stashed; the accelerator's state too when the stack runs on one. A state equal to the
    previous stash is stored by reference, so a stack without randomness holds a single state.
    """

    def __init__(self, device: torch.device, enabled: bool = True):
        self.enabled = enabled
        self._device_module = None if device.type in ("cpu", "meta") else torch.get_device_module(device.type)
        self._device = device
        self._states: dict[Hashable, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._last: tuple[torch.Tensor, torch.Tensor | None] | None = None

    def _current(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        cpu = torch.get_rng_state()
        dev = self._device_module.get_rng_state(self._device) if self._device_module is not None else None
        last = self._last
        if last is not None and torch.equal(cpu, last[0]) and (dev is None or torch.equal(dev, last[1])):
            return last
        self._last = (cpu, dev)
        return self._last

    def stash(self, key: Hashable) -> None:
        if self.enabled:
            self._states[key] = self._current()

    def restore(self, key: Hashable) -> None:
        if not self.enabled:
            return
        try:
            cpu, dev = self._states[key]
        except KeyError:
            raise RuntimeError(
                f"no random state was recorded for transform {key!r}: a coupling's backward must call the same "
                "transforms (with the same keys) as its forward"
            ) from None
        torch.set_rng_state(cpu)
        if dev is not None:
            self._device_module.set_rng_state(dev, self._device)

    @contextlib.contextmanager
    def preserved(self) -> Iterator[None]:
        """Leave the global RNG as it was before the recompute (the recompute rewinds it per transform)."""
        if not self.enabled:
            yield
            return
        cpu = torch.get_rng_state()
        dev = self._device_module.get_rng_state(self._device) if self._device_module is not None else None
        try:
            yield
        finally:
            torch.set_rng_state(cpu)
            if dev is not None:
                self._device_module.set_rng_state(dev, self._device)


class TransformRunner:
    """Calls a transform, stashing (forward) or restoring (recompute) its RNG state under a key.

    Couplings call every sub-transform through a runner: ``runner(key, module, *args)``. Keys only need to be
    unique within one coupling; :meth:`scope` prefixes them for nested couplings. The plain runner
    (:data:`PLAIN`) just calls the module.
    """

    def __init__(self, tape: RNGTape | None = None, mode: str = "plain", prefix: tuple = ()):
        self.tape, self.mode, self.prefix = tape, mode, prefix

    def scope(self, name: Hashable) -> "TransformRunner":
        return TransformRunner(self.tape, self.mode, (*self.prefix, name))

    def __call__(self, key: Hashable, module: Callable[..., Any], *args: Any) -> Any:
        if self.mode == "record":
            self.tape.stash((*self.prefix, key))
        elif self.mode == "replay":
            self.tape.restore((*self.prefix, key))
        return module(*args)


PLAIN = TransformRunner()
