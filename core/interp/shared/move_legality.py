"""How often the model writes a legal whole move, for games whose move is several tokens.

Per-token legality (``legality.evaluate_legality``) says whether each next character could still
start or continue a legal move; a user sees something stricter: the model's own move, written
greedily character by character from the true game so far until the token that ends a move, and
judged legal or not by the rules (python-chess, for SAN). Every move position of every game is
decoded from one forward pass of its game: each prefix's keys and values are cut from it,
left-padded into one batch (an attention mask hides the padding and keeps the positions, as
TransformerLens does for left-padded text), then every row writes one token per step.
"""

from __future__ import annotations

import numpy as np
import torch

from core.games.base import Game
from core.models.handle import ModelHandle

MAX_MOVE_TOKENS = 8  # the longest SAN ("exd8=Q+" has 7) and the space that ends it


def greedy_after(handle: ModelHandle, tokens: torch.Tensor, rows: list[tuple[int, int]], steps: int = MAX_MOVE_TOKENS, games_per_pass: int = 32, rows_per_pass: int = 128, hooks: list | None = None) -> np.ndarray:
    """``int (len(rows), steps)``: the tokens the model writes greedily after ``tokens[g, : p + 1]``
    for each row ``(g, p)``; each row on its own (batching and padding change nothing). With
    ``hooks`` (scoped forward hooks that act on each position alone, such as an MLP replaced by
    its transcoder) every pass runs with them.

    One forward pass of each game gives the keys and values of every prefix at once; rows of
    similar length then start from their prefixes' part of them, left-padded to a common length
    (an attention mask hides the padding and keeps each row's positions), and write one token per
    step.
    """
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    out = np.zeros((len(rows), steps), dtype=np.int64)
    model, cfg = handle.model, handle.cfg
    games = sorted({g for g, _ in rows})
    for lo in range(0, len(games), games_per_pass):
        chunk = games[lo : lo + games_per_pass]
        slot = {g: k for k, g in enumerate(chunk)}
        ids = sorted((i for i, (g, _) in enumerate(rows) if g in slot), key=lambda i: rows[i][1])
        with (handle.hooked(hooks) if hooks else handle.session()), torch.inference_mode():
            full = TransformerLensKeyValueCache.init_cache(cfg, cfg.device, len(chunk))
            part = tokens[chunk, : max(rows[i][1] for i in ids) + 1].to(cfg.device)
            logits = model(part, past_kv_cache=full, attention_mask=torch.ones_like(part))
            for r0 in range(0, len(ids), rows_per_pass):
                batch = ids[r0 : r0 + rows_per_pass]
                width = max(rows[i][1] for i in batch) + 1
                cache = TransformerLensKeyValueCache.init_cache(cfg, cfg.device, len(batch))
                mask = torch.zeros((len(batch), width), dtype=torch.long, device=cfg.device)
                for r, i in enumerate(batch):
                    mask[r, width - rows[i][1] - 1 :] = 1
                for entry, source in zip(cache.entries, full.entries):
                    keys = source.past_keys.new_zeros((len(batch), width) + tuple(source.past_keys.shape[2:]))
                    values = torch.zeros_like(keys)
                    for r, i in enumerate(batch):
                        g, p = rows[i]
                        keys[r, width - p - 1 :] = source.past_keys[slot[g], : p + 1]
                        values[r, width - p - 1 :] = source.past_values[slot[g], : p + 1]
                    entry.past_keys, entry.past_values = keys, values
                cache.previous_attention_mask = mask
                step_logits = torch.stack([logits[slot[rows[i][0]], rows[i][1]] for i in batch])
                for k in range(steps):
                    nxt = step_logits.argmax(-1)
                    out[batch, k] = nxt.cpu().numpy()
                    if k + 1 < steps:
                        step_logits = model(nxt[:, None], past_kv_cache=cache, attention_mask=torch.ones((len(batch), 1), dtype=torch.long, device=cfg.device))[:, -1]
    return out


def whole_move_legality(handle: ModelHandle, games: np.ndarray, hooks: list | None = None) -> dict:
    """Over every move of ``games`` the model can read and write: the share of greedy whole moves
    that python-chess reads as a legal move (``whole_move_legal``), of those written exactly as
    the legal move's standard SAN, check sign included (``whole_move_exact``), and of first tokens
    that start some legal move."""
    game: Game = handle.game
    end = game.move_end_token
    if end is None:
        raise ValueError(f"{game.title} moves have fixed lengths: use legality.evaluate_legality")
    games = np.asarray(games)
    tokens = torch.from_numpy(game.batch_tokens(games))
    rows, legal_sets, befores = [], [], []
    for g, row in enumerate(games):
        moves = tuple(int(m) for m in row if m >= 0)
        board_at = game.move_positions(row[None])[0]  # where the board after move t is complete
        for t in range(len(moves)):
            p = 2 if t == 0 else int(board_at[t - 1])  # ";1." then each separator's end
            if p < 0 or p + MAX_MOVE_TOKENS >= game.n_ctx:
                break
            rows.append((g, p))
            legal_sets.append(game.legal_move_texts(moves[:t]))
            befores.append(moves[:t])
    written = greedy_after(handle, tokens, rows, hooks=hooks)
    vocab = game.vocab
    whole = exact = first = 0
    for tokens, legal, before in zip(written, legal_sets, befores):
        stop = np.flatnonzero(tokens == end)
        text = "".join(vocab[t] for t in tokens[: stop[0]]) if len(stop) else None
        exact += text in legal
        whole += text in legal or (bool(text) and game.accepts_move_text(before, text))
        first += any(s.startswith(vocab[tokens[0]]) for s in legal)
    n = max(len(rows), 1)
    return {"whole_move_legal": whole / n, "whole_move_exact": exact / n, "first_token_legal": first / n, "positions": len(rows), "games": int(len(games))}
