"""The model's next-move predictions for one game: now, and after every move so far.

A move may be several tokens (chess: from-square, to-square, promotion). The probability of a move
is the product of its tokens' conditional probabilities; all legal moves of the position are scored
in one batched forward: the game's prefix once (its keys and values cached), then one short row per
possible first token (every square), with a second token appended where a third one (a promotion)
follows. The prefix pass also gives the prediction after every earlier token (the history).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from core.games.base import Game, GameState, TokenBatch
from core.games.registry import as_game
from core.models.handle import ModelHandle

EXTRA_FIRST_TOKENS = 6  # illegal from-squares scored too, so the table can show illegal moves


@dataclass(frozen=True)
class Predictions:
    """Everything the board player shows about the model, as plain arrays (cheap to cache).

    ``probs`` is the next token's probability per square (Othello: the next move; chess: the
    from-square of the next move); squares without a token get 0. History arrays have one entry
    per move played, for the prediction made right after that move (NaN once the game is over or
    past the model's context). ``move_probs`` maps scored moves (every legal one, and the likeliest
    illegal ones) to their probability; ``second`` maps a first-token square to the distribution of
    the second token over squares (chess: the to-square given the from-square).
    """

    probs: np.ndarray  # float (n_squares,)
    top1: int  # square of the top-1 next token
    top1_legal: bool
    illegal_mass: float
    history_top1_legal: np.ndarray  # float (T,): 1.0 / 0.0 / NaN
    history_illegal_mass: np.ndarray  # float (T,)
    history_top1: np.ndarray  # int (T,) top-1 square after each move
    move_probs: dict[int, float] = field(default_factory=dict)
    second: dict[int, np.ndarray] = field(default_factory=dict)
    history_second_top1_legal: np.ndarray | None = None  # chess: to-square top-1 legal, per move
    legal_move_mass: float = float("nan")  # sum of the probabilities of all legal moves
    next_token: np.ndarray | None = None  # (d_vocab,) the very next token's distribution (several tokens a move)


def game_tokens(moves: tuple[int, ...], game: Game | int) -> torch.Tensor:
    """``(1, pos)`` model input for a game, cut to the model's context."""
    return torch.from_numpy(as_game(game).game_tokens(moves)[None, :].astype(np.int64))


def next_token_probs(handle: ModelHandle, moves: tuple[int, ...]) -> np.ndarray:
    """``(d_vocab,)`` the model's distribution of the very next token after ``moves``."""
    return handle.forward(game_tokens(moves, handle.game))[0, -1].float().softmax(-1).numpy()


def _token_probs_on_squares(probs: np.ndarray, token_square: np.ndarray, n_squares: int) -> np.ndarray:
    """``(..., d_vocab)`` token probabilities -> ``(..., n_squares)`` (tokens naming a square)."""
    named = np.flatnonzero(token_square >= 0)
    out = np.zeros(probs.shape[:-1] + (n_squares,), dtype=np.float32)
    out[..., token_square[named]] = probs[..., named]
    return out


Hooks = tuple[list, list | None]  # forward hooks on the game's pass and on the continuation rows' (positions from the row's start; None: rows run as without hooks)


def predict(handle: ModelHandle, state: GameState, hooks: Hooks | None = None) -> Predictions | None:
    """Predictions after the moves of ``state``; None before the first move (no input yet).

    ``hooks``: run through TransformerLens with these scoped hooks (an edit of the model); the
    same call with empty lists is the unedited run on the same kernels, bit for bit comparable."""
    game = handle.game
    if not state.moves and game.square_moves:
        return None
    if game.n_squares != state.board.size:
        raise ValueError(f"model {handle.name} plays {game.title}; the game has {state.board.size} squares")
    if game.square_moves:
        return _predict_square_moves(handle, game, state, hooks)
    return _predict_token_moves(handle, game, state, hooks)


def _history(game: Game, moves: tuple[int, ...], probs_tok: np.ndarray, kinds: tuple[int, ...] = (0,), batch: TokenBatch | None = None) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per move played and per token kind: was the top-1 prediction of the next token of that
    kind legal, the illegal mass there, and the square the top-1 token names (``batch``: the
    game's ``TokenBatch`` if the caller already has it)."""
    if batch is None:
        batch = game.token_batch(np.array([moves], dtype=np.int64).reshape(1, len(moves)))
    T = min(probs_tok.shape[0], batch.tokens.shape[1])
    probs_tok = probs_tok[:T]
    legal, valid = batch.legal[0, :T], batch.valid[0, :T]
    top_tok = probs_tok.argmax(-1)
    ok = legal[np.arange(T), top_tok].astype(float)
    illegal = 1.0 - (probs_tok * legal).sum(-1)
    n = len(moves)
    token_square = game.token_square()
    out = {}
    for kind in kinds:
        top1_legal, mass = np.full(n, np.nan), np.full(n, np.nan)
        top_sq = np.full(n, -1, dtype=np.int64)
        for p in np.flatnonzero((batch.kind[0, :T] == kind) & valid):
            i = int(batch.move[0, p]) - 1 + (0 if kind == 0 else 1)  # the move just played before p's token
            if 0 <= i < n:
                top1_legal[i], mass[i], top_sq[i] = ok[p], illegal[p], token_square[top_tok[p]]
        out[kind] = (top1_legal, mass, top_sq)
    return out


def _predict_square_moves(handle: ModelHandle, game: Game, state: GameState, hooks: Hooks | None = None) -> Predictions:
    """One token per move: the next-token distribution is the move distribution."""
    tokens = game_tokens(state.moves, game)
    logits = handle.forward(tokens) if hooks is None else handle.run_with_hooks(tokens, hooks[0])
    probs_tok = logits[0].float().softmax(-1).numpy()  # (pos, d_vocab)
    T = tokens.shape[1]
    token_square = game.token_square()
    probs_sq = _token_probs_on_squares(probs_tok, token_square, game.n_squares)
    # Legal after the last move the model read (a game longer than the context is cut).
    batch = game.token_batch(np.array([state.moves[:T]], dtype=np.int64))  # one replay serves both
    legal_tok = batch.legal[0, T - 1]
    hist_ok, hist_mass, hist_top = _history(game, state.moves[:T], probs_tok, batch=batch)[0]
    last = probs_tok[T - 1]
    top_tok = int(last.argmax())
    # A game longer than the context has no prediction for its final move; it is over by then.
    top_sq = np.where(hist_top >= 0, hist_top, token_square[np.maximum(probs_tok.argmax(-1), 1)][: len(hist_top)])
    moves = {int(s): float(probs_sq[T - 1, s]) for s in token_square[np.flatnonzero(legal_tok)]}
    return Predictions(
        probs=probs_sq[T - 1],
        top1=int(token_square[max(top_tok, 1)]),
        top1_legal=bool(legal_tok[top_tok]),
        illegal_mass=float(1.0 - (last * legal_tok).sum()),
        history_top1_legal=hist_ok,
        history_illegal_mass=hist_mass,
        history_top1=top_sq,
        move_probs=moves,
        legal_move_mass=float(sum(moves.values())),
    )


def _predict_token_moves(handle: ModelHandle, game: Game, state: GameState, hooks: Hooks | None = None) -> Predictions | None:
    """Several tokens per move: score every legal move (and, when a move's first token names its
    from-square, the likeliest illegal ones) in one pass over the shared prefix."""
    prefix, move_rows = game.continuation_rows(state)
    L = len(prefix)
    longest = max((len(t) for _, t in move_rows), default=1)
    if L + longest > game.n_ctx:
        return None  # the next move no longer fits in the model's context
    token_square = game.token_square()
    square_first = bool((token_square >= 0).any())
    legal = state.legal_moves
    legal_from = sorted({game.move_squares(m)[0] for m in legal})
    hooked = {} if hooks is None else {"prefix_hooks": hooks[0], "row_hooks": hooks[1]}
    with handle.prefix_session(torch.from_numpy(prefix), **hooked) as (prefix_logits, continue_rows):
        first = prefix_logits.float().softmax(-1).numpy()  # (L, d_vocab): the prediction after every token
        p_next = first[L - 1]
        if square_first:
            # One row per from-square worth showing (every legal one, and the model's favourite
            # illegal ones) gives the second token's distribution after it; promotions add a row
            # per (from, to) for the piece letter.
            p_first = _token_probs_on_squares(p_next, token_square, game.n_squares)
            extra = [int(s) for s in np.argsort(-p_first, kind="stable") if int(s) not in legal_from and (token_square == int(s)).any()][:EXTRA_FIRST_TOKENS]
            square_rows = [(s, [game.square_token(s)]) for s in legal_from + extra]
            long_rows = [(m, t) for m, t in move_rows if len(t) > 2]
            rows = [t for _, t in square_rows] + [t[:-1] for _, t in long_rows]
        else:
            square_rows, rows = [], [t for _, t in move_rows]
        width = max((len(r) for r in rows), default=1)
        continuations = np.full((max(len(rows), 1), width), game.pad_token, dtype=np.int64)
        for i, r in enumerate(rows):
            continuations[i, : len(r)] = r
        probs = continue_rows(torch.from_numpy(continuations)).float().softmax(-1).numpy()  # (rows, width, d_vocab)

    move_probs: dict[int, float] = {}
    if square_first:
        row_of = {s: i for i, (s, _) in enumerate(square_rows)}
        long_row = {m: len(square_rows) + i for i, (m, _) in enumerate(long_rows)}
        for m, toks in move_rows:
            p = float(p_next[toks[0]]) * float(probs[row_of[game.move_squares(m)[0]], 0, toks[1]])
            if m in long_row:
                p *= float(probs[long_row[m], 1, toks[2]])
            move_probs[m] = p
    else:
        for i, (m, toks) in enumerate(move_rows):
            p = float(p_next[toks[0]])
            for j in range(1, len(toks)):
                p *= float(probs[i, j - 1, toks[j]])
            move_probs[m] = p
    legal_mass = float(sum(move_probs.values()))
    history = _history(game, state.moves, first, kinds=(0, 1))
    hist_ok, hist_mass, hist_top = history[0]
    hist_second_ok = history[1][0]
    if square_first:
        second = {s: _token_probs_on_squares(probs[i, 0], token_square, game.n_squares) for i, (s, _) in enumerate(square_rows)}
        legal_pairs = {game.move_squares(m) for m in legal}
        candidates = []
        for f in legal_from + extra:
            for t in np.argsort(-second[f], kind="stable")[:8]:
                if (f, int(t)) not in legal_pairs and f != int(t):
                    candidates.append((float(p_first[f] * second[f][int(t)]), f + 64 * int(t)))
        for p, m in sorted(candidates, reverse=True)[:10]:
            move_probs[m] = p
        top_tok = int(p_next.argmax())
        top_sq = int(token_square[top_tok])
        first_legal = np.zeros(game.n_squares, dtype=bool)
        first_legal[legal_from] = True
        top1_legal, illegal_mass = bool(top_sq >= 0 and first_legal[top_sq]), float(1.0 - p_first[first_legal].sum())
    else:
        # The first token names no square: the board shows the legal moves' probability summed
        # by from-square, and a picked piece's moves by destination (renormalised).
        p_first = np.zeros(game.n_squares, dtype=np.float32)
        by_pair = np.zeros((game.n_squares, game.n_squares), dtype=np.float32)
        for m in legal:
            f, t = game.move_squares(m)
            p_first[f] += move_probs[m]
            by_pair[f, t] += move_probs[m]
        second = {f: by_pair[f] / max(float(by_pair[f].sum()), 1e-30) for f in legal_from}
        top_sq = int(np.argmax(p_first)) if legal else -1
        top1_legal = bool(int(p_next.argmax()) in {toks[0] for _, toks in move_rows})  # starts a legal move
        illegal_mass = max(0.0, 1.0 - legal_mass)
    return Predictions(
        probs=p_first,
        top1=top_sq,
        top1_legal=top1_legal,
        illegal_mass=illegal_mass,
        history_top1_legal=hist_ok,
        history_illegal_mass=hist_mass,
        history_top1=hist_top,
        move_probs=move_probs,
        second=second,
        history_second_top1_legal=hist_second_ok,
        legal_move_mass=legal_mass,
        next_token=p_next,
    )


def top_k(pred: Predictions, legal: np.ndarray, game: Game | int, k: int = 10) -> list[dict]:
    """Rows of the top-k table: move label, probability, and whether it is legal now.

    ``legal``: bool per square (one-square moves) or the collection of legal move ints.
    """
    game = as_game(game)
    if game.square_moves:
        order = np.argsort(-pred.probs, kind="stable")[:k]
        return [
            {"rank": i + 1, "move": game.square_label(int(sq)), "probability": float(pred.probs[sq]), "legal": bool(legal[sq])}
            for i, sq in enumerate(order)
        ]
    legal_set = set(int(m) for m in legal)
    ranked = sorted(pred.move_probs.items(), key=lambda kv: -kv[1])[:k]
    return [{"rank": i + 1, "move": game.move_label(m), "probability": p, "legal": m in legal_set} for i, (m, p) in enumerate(ranked)]


def top_moves(pred: Predictions, legal_moves, game: Game, k: int = 10, legal: bool = True) -> list[tuple[int, float]]:
    """The ``k`` likeliest scored moves that are (or are not) legal."""
    legal_set = set(int(m) for m in legal_moves)
    ranked = sorted(pred.move_probs.items(), key=lambda kv: -kv[1])
    return [(m, p) for m, p in ranked if (m in legal_set) == legal][:k]
