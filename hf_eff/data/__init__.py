"""Offline datasets: real data that ships with installed packages, and adapters for the user's own data.

Nothing here downloads by default; a hub is reached only when the caller names a Hugging Face dataset id.
"""

from hf_eff.data.images import IMAGE_DATASETS, load_image_dataset
from hf_eff.data.text import TEXT_CORPORA, TEXT_TASKS, load_text_corpus, load_text_task


__all__ = ["IMAGE_DATASETS", "TEXT_CORPORA", "TEXT_TASKS", "load_image_dataset", "load_text_corpus", "load_text_task"]
