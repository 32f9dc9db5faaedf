"""The downstream generation task of the SPDF benchmark: complete a prompt greedily and score the completion.

``"docstring-summaries"`` (:func:`hf_eff.data.load_text_task`) maps a Python signature to the first sentence of
its docstring, a small data-to-text task in the spirit of the paper's E2E / WebNLG / DART. A fine-tuned model sees
``prompt + "\\n"`` and generates until a newline or end-of-text; the completion is scored with ROUGE-L and exact
match (``hf_eff.metrics.load("rouge_l")``), beside the perplexity of the packed task text.
"""

import torch
from transformers import PreTrainedModel


def generate_completions(model: PreTrainedModel, tokenizer, prompts: list[str], max_new_tokens: int = 96) -> list[str]:
    """Greedy completion of each ``prompt + "\\n"``, stopped at the first newline or end-of-text.

    One prompt at a time (no padding), so a completion never depends on the other prompts of a batch. Prompt and
    completion share the model's context: at most half of it is generated, and a longer prompt keeps its end.
    """
    context = model.config.max_position_embeddings
    max_new_tokens = min(max_new_tokens, context // 2)
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    stop = [tokenizer.eos_token_id, *newline[-1:]]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    completions = []
    with torch.no_grad():
        for prompt in prompts:
            ids = tokenizer(prompt + "\n", add_special_tokens=False, return_tensors="pt")["input_ids"].to(device)
            ids = ids[:, -(context - max_new_tokens) :]  # room for the completion
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=stop,
                pad_token_id=tokenizer.eos_token_id,
            )
            completions.append(
                tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).split("\n")[0].strip()
            )
    model.train(was_training)
    return completions


def generation_scores(
    model: PreTrainedModel, tokenizer, prompts: list[str], references: list[str], max_new_tokens: int = 96
) -> dict[str, float]:
    """``{"rougeL": ..., "exact_match": ...}`` of the model's greedy completions against ``references``."""
    import hf_eff.metrics

    predictions = generate_completions(model, tokenizer, prompts, max_new_tokens)
    return hf_eff.metrics.load("rouge_l").compute(predictions=predictions, references=references)
