import pytest

import hf_eff.metrics
from hf_eff.data.tokenization import byte_level_tokenizer
from hf_eff.sparsity.downstream import generate_completions
from hf_eff.sparsity.recipe import gpt2_config


def test_rouge_l_metric_loads_offline_and_scores_lcs():
    assert "rouge_l" in hf_eff.metrics.available()
    metric = hf_eff.metrics.load("rouge_l")
    # LCS of "a b c d" and "a c d b" is "a c d": P = R = 3/4; punctuation and case do not count as words
    scores = metric.compute(predictions=["A, b c d.", "  Return  x. "], references=["a c d b", "Return x."])
    assert scores["rougeL"] == pytest.approx((0.75 + 1.0) / 2)
    assert scores["exact_match"] == 0.5  # whitespace-normalised, case-sensitive
    assert metric.compute(predictions=["..."], references=["words"]) == {"rougeL": 0.0, "exact_match": 0.0}


def test_generated_completions_stop_at_the_first_line():
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = byte_level_tokenizer()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(gpt2_config(1, 16, 2, 64, len(tokenizer)))
    completions = generate_completions(model, tokenizer, ["f(x)", "g(a, b=1)"], max_new_tokens=12)
    # a prompt longer than the context keeps its end; at most half of the context is generated
    assert len(generate_completions(model, tokenizer, ["x" * 100], max_new_tokens=96)[0].encode()) <= 32
    assert len(completions) == 2 and all(isinstance(c, str) and "\n" not in c for c in completions)
    assert completions == generate_completions(model, tokenizer, ["f(x)", "g(a, b=1)"], max_new_tokens=12)  # greedy
