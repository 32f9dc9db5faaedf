"""Hugging Face models built on the hf_eff engines: one folder per model."""
