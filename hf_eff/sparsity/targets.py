"""Which weights SPDF sparsifies, per architecture.

The paper sparsifies the attention Q, K, V and output projections and both MLP matrices of every transformer
block; embeddings (and the tied LM head), position embeddings, norms and biases stay dense (from the
Cerebras ModelZoo ``param_filter``). The table below names those matrices for the decoder families of
transformers. Names are matched, not module types, because GPT-2 stores them as fused, transposed ``Conv1D``.
"""

from fnmatch import fnmatch

from torch import nn


_LLAMA_STYLE = (
    "*.self_attn.q_proj.weight",
    "*.self_attn.k_proj.weight",
    "*.self_attn.v_proj.weight",
    "*.self_attn.o_proj.weight",
    "*.mlp.gate_proj.weight",
    "*.mlp.up_proj.weight",
    "*.mlp.down_proj.weight",
)

DEFAULT_TARGETS: dict[str, tuple[str, ...]] = {
    # GPT-2: fused QKV c_attn and c_proj, MLP c_fc and c_proj (all Conv1D, weight stored [in, out])
    "gpt2": ("*.attn.c_attn.weight", "*.attn.c_proj.weight", "*.mlp.c_fc.weight", "*.mlp.c_proj.weight"),
    "gpt_neox": (
        "*.attention.query_key_value.weight",
        "*.attention.dense.weight",
        "*.mlp.dense_h_to_4h.weight",
        "*.mlp.dense_4h_to_h.weight",
    ),
    "gptj": (
        "*.attn.q_proj.weight",
        "*.attn.k_proj.weight",
        "*.attn.v_proj.weight",
        "*.attn.out_proj.weight",
        "*.mlp.fc_in.weight",
        "*.mlp.fc_out.weight",
    ),
    "opt": (
        "*.self_attn.q_proj.weight",
        "*.self_attn.k_proj.weight",
        "*.self_attn.v_proj.weight",
        "*.self_attn.out_proj.weight",
        "*.fc1.weight",
        "*.fc2.weight",
    ),
    **dict.fromkeys(("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2"), _LLAMA_STYLE),
}


def check_decoder_only(model: nn.Module) -> None:
    """Raise ``ValueError`` unless ``model`` is a decoder-only transformers language model."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if config is None or model_type is None:
        raise TypeError(f"model must be a transformers PreTrainedModel with a config, got {type(model).__name__}")
    is_encoder = model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False)
    # an architecture transformers does not know (remote code) counts as a decoder if its class says so
    is_causal = model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or any(
        word in type(model).__name__ for word in ("CausalLM", "LMHeadModel")
    )
    if getattr(config, "is_encoder_decoder", False) or is_encoder or not is_causal:
        raise ValueError(
            f"SPDF applies to decoder-only causal language models; got model_type {model_type!r} "
            f"({type(model).__name__})"
        )


def default_targets(model_type: str) -> tuple[str, ...]:
    """The paper's sparsified matrices for ``model_type``; ``ValueError`` if the architecture is not known."""
    try:
        return DEFAULT_TARGETS[model_type]
    except KeyError:
        raise ValueError(
            f"no default SPDF targets for model_type {model_type!r} (known: {sorted(DEFAULT_TARGETS)}); "
            "pass SparsityConfig(targets=[...]) with glob patterns naming its projection weights"
        ) from None


def _matches(param_name: str, pattern: str) -> bool:
    if fnmatch(param_name, pattern):
        return True
    module_name, _, leaf = param_name.rpartition(".")
    return leaf == "weight" and fnmatch(module_name, pattern)


def select_targets(
    model: nn.Module, targets: list[str] | tuple[str, ...] | None, exclude: list[str] | tuple[str, ...] = ()
) -> dict[str, nn.Parameter]:
    """Map parameter name -> parameter for every weight matrix SPDF should mask.

    ``targets=None`` uses :data:`DEFAULT_TARGETS` for ``model.config.model_type``. Every pattern must match at
    least one parameter; a match on an embedding, the LM head, or a parameter that is not a floating-point
    matrix is an error, since SPDF keeps those dense.
    """
    check_decoder_only(model)
    patterns = tuple(targets) if targets is not None else default_targets(model.config.model_type)
    dense_ids = set()
    for getter in ("get_input_embeddings", "get_output_embeddings"):
        module = getattr(model, getter, lambda: None)()
        if module is not None and getattr(module, "weight", None) is not None:
            dense_ids.add(id(module.weight))

    named = dict(model.named_parameters())  # tied parameters appear once, under their first name
    selected: dict[str, nn.Parameter] = {}
    for pattern in patterns:
        hits = [name for name in named if _matches(name, pattern)]
        if not hits:
            raise ValueError(
                f"target pattern {pattern!r} matches no parameter of {type(model).__name__} (e.g. {list(named)[:4]})"
            )
        for name in hits:
            param = named[name]
            if param.dim() < 2 or not param.is_floating_point():
                raise ValueError(
                    f"target pattern {pattern!r} selects {name!r} of shape {tuple(param.shape)}; "
                    "SPDF sparsifies floating-point weight matrices only (norms and biases stay dense)"
                )
            if id(param) in dense_ids:
                raise ValueError(
                    f"target pattern {pattern!r} selects the embedding / LM head {name!r}, which SPDF keeps dense"
                )
            selected[name] = param
    for pattern in exclude:
        selected = {name: p for name, p in selected.items() if not fnmatch(name, pattern)}
    if not selected:
        raise ValueError(f"exclude patterns {list(exclude)} removed every target; nothing is left to sparsify")
    return selected
