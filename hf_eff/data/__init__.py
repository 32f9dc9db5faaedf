"""Offline datasets: real data that ships with installed packages, and adapters for the user's own data.

- :func:`load_image_dataset` (:mod:`.images`): digits, Fashion-MNIST (a Debian package), or the user's own images.
- :func:`load_text_corpus`, :func:`load_text_task` (:mod:`.text`, built from :mod:`.docstrings`): text from the
  docstrings of installed packages.
- :mod:`.volumes`: 3D volumes for the reversible 3D U-Net; :mod:`.tokenization`: an offline byte-level tokenizer.
- :mod:`.external`: a local path or a Hub dataset id named by the user.

Nothing here downloads by default; a hub is reached only when the caller names a Hugging Face dataset id.
"""

from hf_eff.data.images import IMAGE_DATASETS, load_image_dataset
from hf_eff.data.text import TEXT_CORPORA, TEXT_TASKS, load_text_corpus, load_text_task


__all__ = ["IMAGE_DATASETS", "TEXT_CORPORA", "TEXT_TASKS", "load_image_dataset", "load_text_corpus", "load_text_task"]
