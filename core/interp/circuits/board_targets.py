"""The targets a board position offers an attribution graph, and the input each needs.

- ``top``: the model's likeliest next tokens at the last position (covering 95 % of the
  probability, at most 10): the next moves (Othello), or the next character (PGN);
- ``move``: one legal move; a move written in several tokens is appended to the input (all but
  its last token, plus the space after a PGN move) and the target is the sum of its tokens'
  demeaned logits, each where it is predicted (the whole move's log-probability, up to the
  softmax's normalisers);
- ``legal``: the mean logit of the legal next tokens minus that of the illegal ones;
- ``probe``: a linear probe's reading of one square after a layer, at the last position ("how
  does the model work out that d3 is mine?"): the class's direction minus the mean class's.
"""

from __future__ import annotations

import numpy as np
import torch

from core.games.base import Game
from core.interp.circuits.targets import Target, legal_minus_illegal, probe_target, salient_logits, sequence_target
from core.interp.shared.predictions import game_tokens
from core.interp.shared.token_squares import legal_tokens_now
from core.models.handle import ModelHandle

KINDS = ("top", "move", "legal", "probe")


def token_name(game: Game, token: int) -> str:
    """A token as a person reads it: its square (Othello, UCI chess) or its character."""
    if game.tokens_name_squares:
        square = int(game.token_square()[token])
        return game.square_label(square) if square >= 0 else game.vocab[token]
    char = game.vocab[token]
    return "␣" if char == " " else char


@torch.no_grad()
def last_logits(handle: ModelHandle, tokens: torch.Tensor) -> torch.Tensor:
    return handle.model(tokens[None].to(handle.device))[0, -1].float().cpu()


def unembedding(handle: ModelHandle) -> torch.Tensor:
    return handle.model.W_U.detach().float().cpu()


def board_targets(handle: ModelHandle, moves: tuple[int, ...], kind: str, move: int | None = None, probe: tuple | None = None) -> tuple[torch.Tensor, list[Target]]:
    """(input tokens, targets) for ``kind`` at the position after ``moves``; ``probe`` is
    ``(weight (d_model, n_classes) of one square, layer, class, label)`` for ``kind == "probe"``."""
    game = handle.game
    tokens = game_tokens(moves, game)[0]
    W_U = unembedding(handle)
    last = len(tokens) - 1
    if kind == "top":
        labels = {t: token_name(game, t) for t in range(handle.cfg.d_vocab)}
        return tokens, salient_logits(W_U, last_logits(handle, tokens), last, labels)
    if kind == "legal":
        legal = torch.from_numpy(np.asarray(legal_tokens_now(moves, game), dtype=bool))
        return tokens, [legal_minus_illegal(W_U, legal, last)]
    if kind == "probe":
        if probe is None:
            raise ValueError("a probe target needs a probe, a square and a class")
        weight, layer, cls, label = probe
        return tokens, [probe_target(torch.as_tensor(weight, dtype=torch.float32), int(layer), last, int(cls), label)]
    if kind != "move":
        raise ValueError(f"unknown target {kind!r}: one of {', '.join(KINDS)}")
    state = game.state(moves)
    if move is None or move not in set(int(m) for m in state.legal_moves):
        raise ValueError("choose a legal move of this position as the target")
    tail = [int(t) for t in game.move_tokens(move, moves)]
    if not game.tokens_name_squares:
        tail.append(game.vocab.index(" "))  # a PGN move ends with the space after it
    label = game.move_label(move) if game.tokens_name_squares else game.move_text(moves, move)
    probs = torch.softmax(last_logits(handle, tokens), -1)
    if len(tail) == 1:
        return tokens, [sequence_target(W_U, tail, last, label, float(probs[tail[0]]))]
    full = torch.cat([tokens, torch.tensor(tail[:-1], dtype=tokens.dtype)])
    if len(full) > handle.cfg.n_ctx:
        raise ValueError(f"the move does not fit the model's context ({handle.cfg.n_ctx} tokens) after this game")
    return full, [sequence_target(W_U, tail, last, label)]
