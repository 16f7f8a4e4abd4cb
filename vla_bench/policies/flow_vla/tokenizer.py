"""A self-contained tokenizer for the tiny backbone: lower-cased words and punctuation hashed into a fixed vocabulary.

Nothing is downloaded or fitted, and ids are stable across processes and machines (CRC32, not Python's salted
`hash`). Collisions are possible but rare at a few thousand buckets for the small vocabulary of robot instructions.
"""

from __future__ import annotations

import re
import zlib

import torch

PAD_ID = 0
BOS_ID = 1
NUM_SPECIAL = 2
_WORD = re.compile(r"\w+|[^\w\s]")


def stable_bucket(text: str, buckets: int, offset: int = 0) -> int:
    """A bucket in [offset, offset + buckets) that depends only on `text`."""
    return offset + zlib.crc32(text.encode("utf-8")) % buckets


class HashedWordTokenizer:
    """Text -> ids: BOS, then one id per word or punctuation mark; PAD = 0 fills batches."""

    def __init__(self, vocab_size: int, max_tokens: int):
        self.vocab_size, self.max_tokens = vocab_size, max_tokens

    def encode(self, text: str) -> list[int]:
        """Ids of one text, BOS first, cut to `max_tokens`."""
        words = _WORD.findall(text.lower())
        ids = [BOS_ID] + [stable_bucket(w, self.vocab_size - NUM_SPECIAL, NUM_SPECIAL) for w in words]
        return ids[: self.max_tokens]

    def batch(self, texts: list[str], device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ids [B, T] (T = longest text) and the valid mask [B, T]."""
        encoded = [self.encode(t) for t in texts]
        length = max(len(e) for e in encoded)
        ids = torch.full((len(texts), length), PAD_ID, dtype=torch.long)
        for i, e in enumerate(encoded):
            ids[i, : len(e)] = torch.tensor(e)
        return ids.to(device), (ids != PAD_ID).to(device)
