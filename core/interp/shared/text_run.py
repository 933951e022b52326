"""A text model's plain run over a prompt: the tokens checked (length, vocabulary), one cached
pass, and the next-token table with each token's loss. The text pages' lens, SAE and patching
views start from it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.interp.shared.position_run import PositionRun
from core.models.handle import ModelHandle


MAX_PROMPT_TOKENS = 1024  # what one page request may run (the bundled text model reads 128)


@dataclass
class NextTokens:
    """After every position ``p``: the top-k next tokens and their probabilities, and, where the
    sequence goes on, the token it really continues with, its probability, rank and loss."""

    top_ids: np.ndarray  # int (pos, k)
    top_probs: np.ndarray  # float (pos, k)
    actual: np.ndarray  # int (pos,) the token at p + 1 (-1 after the last)
    actual_prob: np.ndarray  # float (pos,) nan after the last
    actual_rank: np.ndarray  # int (pos,) 1 = the top token; -1 after the last
    loss: np.ndarray  # float (pos,) -log p(actual); nan after the last
    entropy: np.ndarray  # float (pos,) nats

    @property
    def mean_loss(self) -> float:
        real = ~np.isnan(self.loss)
        return float(self.loss[real].mean()) if real.any() else float("nan")


def check_tokens(tokens: torch.Tensor, handle: ModelHandle) -> torch.Tensor:
    """``tokens (pos,)`` as int64, or ``ValueError`` saying why the model cannot read them."""
    tokens = torch.as_tensor(tokens, dtype=torch.int64).reshape(-1)
    if len(tokens) == 0:
        raise ValueError("no tokens to run")
    if len(tokens) > min(handle.cfg.n_ctx, MAX_PROMPT_TOKENS):
        raise ValueError(f"{len(tokens)} tokens is more than the model reads at once ({min(handle.cfg.n_ctx, MAX_PROMPT_TOKENS)})")
    if int(tokens.min()) < 0 or int(tokens.max()) >= handle.cfg.d_vocab:
        raise ValueError(f"token ids must be in 0..{handle.cfg.d_vocab - 1}")
    return tokens


def run_tokens(handle: ModelHandle, tokens: torch.Tensor) -> PositionRun:
    """One cached forward pass of ``tokens (pos,)`` (the lens, DLA and attention all read it)."""
    tokens = check_tokens(tokens, handle)[None]
    with handle.session() as model, torch.inference_mode():
        logits, cache = model.run_with_cache(tokens)
    return PositionRun(tokens, logits.cpu(), cache.to("cpu"))


def next_tokens(logits: torch.Tensor, tokens: torch.Tensor, k: int = 10) -> NextTokens:
    """The next-token table of ``logits (pos, d_vocab)`` for the sequence ``tokens (pos,)``."""
    logp = F.log_softmax(logits.float(), dim=-1)
    top = logp.topk(min(k, logp.shape[-1]), dim=-1)
    n = len(tokens)
    actual = np.full(n, -1, dtype=np.int64)
    actual[:-1] = tokens[1:].numpy()
    lp = np.full(n, np.nan)
    rank = np.full(n, -1, dtype=np.int64)
    if n > 1:
        nxt = tokens[1:]
        chosen = logp[:-1].gather(-1, nxt[:, None])[:, 0]
        lp[:-1] = chosen.numpy()
        rank[:-1] = (logp[:-1] > chosen[:, None]).sum(-1).numpy() + 1
    entropy = -(logp.exp() * logp).sum(-1)
    return NextTokens(top.indices.numpy(), top.values.exp().numpy(), actual, np.exp(lp), rank, -lp, entropy.numpy())
