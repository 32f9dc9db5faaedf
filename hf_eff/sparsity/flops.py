"""Analytic training FLOPs of decoder-only transformers, dense and with SPDF's static sparsity.

Per token and forward pass, at 2 FLOPs per multiply-accumulate:

- sparsifiable matmuls: ``2 * (attention projections + MLP matrices)`` per layer, i.e. ``24 d^2 L`` for a
  GPT with a 4d MLP; with sparsity ``s`` only ``(1 - s)`` of it is computed;
- attention scores: ``4 * n_ctx * d * L`` (QK^T and AV at full length, no causal halving);
- LM head: ``2 * d * V`` (dense).

Training is 3x the forward pass: with a static mask both backward GEMMs skip the masked weights too (the
``3 * sparse_flops`` convention of Cerebras' Sparse-IFT code). On GPUs the sparse saving is theoretical: an
unstructured mask still runs as a dense GEMM. These formulas give 2.49x for GPT-3 XL at 75% sparsity with a
2048-token context (the paper's "2.5x") and 1.65x for GPT-2 small.
"""

import math
from dataclasses import dataclass
from typing import Any


_GATED_MLP_TYPES = {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3"}


@dataclass(frozen=True)
class DecoderShape:
    """The sizes the FLOP formula needs, read from any decoder config."""

    hidden_size: int
    num_layers: int
    vocab_size: int
    intermediate_size: int
    kv_size: int  # width of K and V (smaller than hidden_size with grouped-query attention)
    gated_mlp: bool = False

    @classmethod
    def from_config(cls, config: Any) -> "DecoderShape":
        def first(*names: str, default: Any = None) -> Any:
            for name in names:
                value = getattr(config, name, None)
                if value is not None:
                    return value
            return default

        hidden = first("hidden_size", "n_embd", "d_model")
        layers = first("num_hidden_layers", "n_layer", "num_layers")
        vocab = first("vocab_size")
        if not all(isinstance(v, int) and v > 0 for v in (hidden, layers, vocab)):
            raise ValueError(
                f"config must give positive hidden size, layer count and vocab size; got hidden={hidden}, "
                f"layers={layers}, vocab={vocab} from {type(config).__name__}"
            )
        inner = first("intermediate_size", "n_inner", "ffn_dim", default=4 * hidden)
        heads = first("num_attention_heads", "n_head")
        kv_heads = first("num_key_value_heads", default=heads)
        kv_size = hidden if not heads else hidden * kv_heads // heads
        gated = getattr(config, "model_type", None) in _GATED_MLP_TYPES
        return cls(hidden, layers, vocab, inner, kv_size, gated)

    @property
    def sparsifiable_params(self) -> int:
        """Weights of the matrices SPDF masks, over all layers."""
        attention = 2 * self.hidden_size * self.hidden_size + 2 * self.hidden_size * self.kv_size
        mlp = (3 if self.gated_mlp else 2) * self.hidden_size * self.intermediate_size
        return self.num_layers * (attention + mlp)


@dataclass(frozen=True)
class TrainingFlops:
    """FLOPs of a training run; ``reduction`` is dense / sparse."""

    sparsity: float
    tokens: int
    seq_len: int
    sparsifiable_forward_per_token: float  # dense value
    attention_forward_per_token: float
    lm_head_forward_per_token: float

    @property
    def dense_forward_per_token(self) -> float:
        return self.sparsifiable_forward_per_token + self.attention_forward_per_token + self.lm_head_forward_per_token

    @property
    def sparse_forward_per_token(self) -> float:
        return (
            (1.0 - self.sparsity) * self.sparsifiable_forward_per_token
            + self.attention_forward_per_token
            + self.lm_head_forward_per_token
        )

    @property
    def sparsifiable_fraction(self) -> float:
        """Share of the dense forward FLOPs that sparsity can remove."""
        return self.sparsifiable_forward_per_token / self.dense_forward_per_token

    @property
    def dense(self) -> float:
        """Dense training FLOPs (forward + backward) for ``tokens`` tokens."""
        return 3.0 * self.dense_forward_per_token * self.tokens

    @property
    def sparse(self) -> float:
        """Training FLOPs with static sparsity ``sparsity``."""
        return 3.0 * self.sparse_forward_per_token * self.tokens

    @property
    def saved(self) -> float:
        return self.dense - self.sparse

    @property
    def reduction(self) -> float:
        return self.dense / self.sparse


def training_flops(config: Any, sparsity: float, tokens: int, seq_len: int) -> TrainingFlops:
    """Theoretical training FLOPs of a decoder-only transformer pre-trained on ``tokens`` tokens of length
    ``seq_len`` with static unstructured sparsity ``sparsity`` on its projection matrices.

    ``config`` is any transformers decoder config (GPT-2, GPT-NeoX, GPT-J, OPT, Llama, ...) or an object with the
    same attributes. Example, GPT-3 XL at 75% sparsity:

    >>> from transformers import GPT2Config
    >>> xl = GPT2Config(n_embd=2048, n_layer=24, n_head=16, vocab_size=50257)
    >>> round(training_flops(xl, 0.75, tokens=26_000_000_000, seq_len=2048).reduction, 2)
    2.49
    """
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or math.isnan(sparsity):
        raise ValueError(f"sparsity must be a number in [0, 1), got {sparsity!r}")
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    tokens = _whole_number("tokens", tokens, minimum=0)
    seq_len = _whole_number("seq_len", seq_len, minimum=1)
    shape = DecoderShape.from_config(config)
    return TrainingFlops(
        sparsity=float(sparsity),
        tokens=tokens,
        seq_len=seq_len,
        sparsifiable_forward_per_token=2.0 * shape.sparsifiable_params,
        attention_forward_per_token=4.0 * seq_len * shape.hidden_size * shape.num_layers,
        lm_head_forward_per_token=2.0 * shape.hidden_size * shape.vocab_size,
    )


def _whole_number(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int; an integral float is accepted because ``26e9`` is how token budgets are written."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "non-negative" if minimum == 0 else "positive"
        raise ValueError(
            f"{name} must be a {kind} whole number (an int, or an integral float like 26e9), got {value!r}"
        )
    return value
