"""An offline byte-level tokenizer for the tiny-GPT experiments (SPDF).

Every UTF-8 byte is one token (ids 0-255, in byte order) and ``<|endoftext|>`` (id 256) serves as BOS, EOS
and padding token. It is built at run time with the ``tokenizers`` library, so nothing is downloaded, every
string round-trips exactly, and the vocabulary is tiny: with 257 embeddings the LM head no longer dominates the
FLOPs of a small model, which keeps the share of FLOPs that sparsity can remove close to that of a large GPT
(see :mod:`hf_eff.sparsity.flops`). The price is longer sequences than with a BPE vocabulary.

>>> tokenizer = byte_level_tokenizer()
>>> tokenizer("héllo")["input_ids"]
[104, 195, 169, 108, 108, 111]
>>> tokenizer.decode([104, 195, 169, 108, 108, 111])
'héllo'
"""

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast


END_OF_TEXT = "<|endoftext|>"


def _bytes_to_unicode() -> dict[int, str]:
    """The GPT-2 byte -> printable character table that byte-level BPE models use as their alphabet."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = dict(zip(printable, printable))
    shift = 0
    for byte in range(256):
        if byte not in chars:
            chars[byte] = 256 + shift
            shift += 1
    return {byte: chr(code) for byte, code in chars.items()}


def byte_level_tokenizer(model_max_length: int | None = None) -> PreTrainedTokenizerFast:
    """A ``PreTrainedTokenizerFast`` with one token per byte plus ``<|endoftext|>``; 257 ids in all.

    Saved with ``save_pretrained`` it reloads through ``AutoTokenizer.from_pretrained`` like any other tokenizer.
    ``model_max_length=None`` means no limit (texts are packed into blocks after tokenization).
    """
    limit = {} if model_max_length is None else {"model_max_length": model_max_length}
    vocab = {char: byte for byte, char in _bytes_to_unicode().items()}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([END_OF_TEXT])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        pad_token=END_OF_TEXT,
        **limit,
    )
