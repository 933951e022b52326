"""Text tokenizers: a ``tokenizers`` JSON file behind a small interface the rest of BoardLens uses.

Text models name their tokenizer in their config (a ``tokenizer.json`` beside the weights, or a
published one in the hub cache). Everything downstream works on token ids; this module is the only
place that turns text into ids and ids back into the spans a page shows.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Iterable, Sequence

END_OF_TEXT = "<|endoftext|>"
MAX_TOKENIZER_BYTES = 64 * 1024 * 1024  # a vocabulary of ~300k tokens with merges is ~30 MB


class TokenizerError(ValueError):
    """A tokenizer file that cannot be used (named in the message)."""


class TextTokenizer:
    """Ids <-> text for one model. ``spans(ids)`` gives each token's own text, for display."""

    def __init__(self, tokenizer, source: str = ""):
        self._tok = tokenizer
        self.source = source

    @classmethod
    def from_file(cls, path: str | Path) -> "TextTokenizer":
        from tokenizers import Tokenizer

        path = Path(path)
        if not path.is_file():
            raise TokenizerError(f"{path}: file is missing")
        if path.stat().st_size > MAX_TOKENIZER_BYTES:
            raise TokenizerError(f"{path}: {path.stat().st_size:,} bytes is larger than any tokenizer ({MAX_TOKENIZER_BYTES:,})")
        try:
            return cls(Tokenizer.from_file(str(path)), str(path))
        except Exception as exc:  # noqa: BLE001 - the Rust library raises its own exception type
            raise TokenizerError(f"{path}: not a readable tokenizer ({str(exc)[:200]})") from None

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    @cached_property
    def end_of_text(self) -> int | None:
        """The id that separates documents (None if the tokenizer has none)."""
        for name in (END_OF_TEXT, "</s>", "<|im_end|>"):
            tid = self._tok.token_to_id(name)
            if tid is not None:
                return int(tid)
        return None

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(e.ids) for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)

    def spans(self, ids: Sequence[int]) -> list[str]:
        """Each token's text in context: the decoded prefix grows by exactly this span, so the spans
        join to the decoded text even where one character takes several byte-level tokens (the
        character is then shown on the token that completes it)."""
        out, done = [], ""
        for i in range(len(ids)):
            text = self.decode(ids[: i + 1])
            text = text if not text.endswith("\ufffd") else done  # an incomplete character so far
            out.append(text[len(done) :] if text.startswith(done) else text)
            done = text if text.startswith(done) else done + out[-1]
        return out

    def token_text(self, tid: int) -> str:
        """One token's text on its own (a vocabulary entry, e.g. in a logit-effect list)."""
        return self.decode([tid])


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> TextTokenizer:
    """A byte-level BPE tokenizer learned on ``texts`` (GPT-2's pre-tokenisation, so any text
    encodes without unknown tokens), with ``<|endoftext|>`` as id 0."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return TextTokenizer(tok, "trained")


def save_tokenizer(tok: TextTokenizer, path: str | Path) -> None:
    tok._tok.save(str(path))
