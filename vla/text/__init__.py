"""Text tokenizers (instruction strings -> LM ids, see ``TextTokenizer``) and pretrained text
encoders (instruction strings -> token states, see ``TextEncoder``); ``FillerWords`` inserts
random words into training instructions."""

from vla.text.bpe_tokenizer import BPETokenizer
from vla.text.byte_tokenizer import ByteTokenizer
from vla.text.filler_words import FillerWords
from vla.text.hf_tokenizer import HFTokenizer
from vla.text.text_encoder import TextEncoder
from vla.text.text_tokenizer import TextTokenizer

__all__ = [
    "BPETokenizer",
    "ByteTokenizer",
    "FillerWords",
    "HFTokenizer",
    "TextEncoder",
    "TextTokenizer",
]
