"""Piece edits judged by the move the model writes, for games whose move is several tokens.

With PGN characters the next token is a move's first character, which names no square, so the
edit of ``piece_edits`` (the same probe step at the position where the board is complete: the
space or ``.`` before the next move) is judged as Karvonen (2024) judged his: let the model write
its next move greedily, character by character until the space that ends it, with the edit in
place at that position on every pass, and ask python-chess whether the move is legal on the
*edited* board (and on the real one). A random direction of the same size is the control.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.games.base import Game
from core.interp.probes.interventions import EditBatch, edit_hooks, make_batch
from core.interp.shared.move_legality import MAX_MOVE_TOKENS
from core.interp.probes.piece_edits import _classes, checked_edit, edit_vectors
from core.interp.probes.linear_probes import Probe
from core.models.handle import ModelHandle



def greedy_moves(
    handle: ModelHandle, probes: dict[int, Probe], batch: EditBatch, layers: list[int], scale: float | list[float], random_seed: int | None = None, readings: dict | None = None, random_rows: list[bool] | None = None,
    run=None,
) -> list[str]:
    """The move each row's model writes greedily after its prefix, the piece edit at ``layers``
    times ``scale`` at the row's last token (0: no edit); "" marks a row that wrote no end of move.
    ``readings`` receives the probe's class on the edited square before and after each layer's
    edit.

    The prefixes run once, left-padded into one batch (an attention mask hides the padding) with
    the edit hooked in at the last position; the characters after it are written one at a time
    from the cached keys and values, which already carry the edit (later positions read the
    edited position through attention, exactly as if every pass were edited again). Rows that
    are one prefix (a position unedited, edited and edited at random) run the positions before
    the edit once, as one row: only the edited position differs between them.
    """
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    game = handle.game
    end = game.move_end_token
    if end is None:
        raise ValueError(f"{game.title} moves have fixed lengths: judge the next token instead (piece_edits)")
    n = len(batch.last)
    lengths = (batch.last + 1).tolist()
    width = max(lengths)
    if width + MAX_MOVE_TOKENS > game.n_ctx:
        raise ValueError("the next move no longer fits in the model's context")
    tokens = torch.full((n, width), game.pad_token, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, length in enumerate(lengths):
        tokens[i, width - length :] = batch.tokens[i, :length]
        mask[i, width - length :] = 1
    left = EditBatch(tokens, torch.full((n,), width - 1), batch.squares, batch.targets)
    edit = lambda layer, x: edit_vectors(x, probes[layer], batch.squares, batch.targets)  # noqa: E731
    record = None
    if readings is not None:
        def record(layer: int, x: torch.Tensor, x_edited: torch.Tensor) -> None:
            readings[layer] = (_classes(probes[layer], x, batch.squares), _classes(probes[layer], x_edited, batch.squares))
    cfg = handle.cfg
    written = np.zeros((n, MAX_MOVE_TOKENS), dtype=np.int64)
    one_prefix = n > 1 and width > 1 and len(set(lengths)) == 1 and bool((tokens == tokens[:1]).all())
    with handle.session() as model, torch.inference_mode():
        if one_prefix:
            cache = TransformerLensKeyValueCache.init_cache(cfg, cfg.device, 1)
            if not _keys_from_run(cache, run, tokens[0, :-1], cfg):
                model(tokens[:1, :-1].to(cfg.device), past_kv_cache=cache, attention_mask=mask[:1, :-1].to(cfg.device))
            _repeat_rows(cache, n)
            tokens, mask = tokens[:, -1:], mask[:, -1:]
            left = EditBatch(tokens, torch.zeros(n, dtype=torch.long), batch.squares, batch.targets)  # the edit: at the one position run
        else:
            cache = TransformerLensKeyValueCache.init_cache(cfg, cfg.device, n)
        with model.hooks(fwd_hooks=edit_hooks(left, layers, scale, edit, random_seed, after=record, random_rows=random_rows)):
            logits = model(tokens.to(cfg.device), past_kv_cache=cache, attention_mask=mask.to(cfg.device))[:, -1]
        ended = np.zeros(n, dtype=bool)
        for k in range(MAX_MOVE_TOKENS):
            nxt = logits.argmax(-1)
            written[:, k] = nxt.cpu().numpy()
            ended |= written[:, k] == end
            if ended.all():  # every row has ended its move: what follows is not read
                break
            if k + 1 < MAX_MOVE_TOKENS:
                logits = model(nxt[:, None], past_kv_cache=cache, attention_mask=torch.ones((n, 1), dtype=torch.long, device=cfg.device))[:, -1]
    vocab = game.vocab
    out = []
    for row in written.tolist():
        out.append("".join(vocab[t] for t in row[: row.index(end)]) if end in row else "")
    return out


def _keys_from_run(cache, run, prefix: torch.Tensor, cfg) -> bool:
    """Fill a one-row key/value cache with ``prefix``'s keys and values read from ``run``'s cached
    pass (``attn.hook_k``/``hook_v`` hold exactly what a pass appends to the cache); False where
    ``run`` is not a pass over ``prefix`` (and more) that kept them."""
    if run is None or run.tokens.shape[1] < len(prefix) or not torch.equal(run.tokens[0, : len(prefix)].cpu(), prefix.cpu()):
        return False
    names = [(f"blocks.{i}.attn.hook_k", f"blocks.{i}.attn.hook_v") for i in range(cfg.n_layers)]
    if not all(k in run.cache.cache_dict and v in run.cache.cache_dict for k, v in names):
        return False
    for entry, (k, v) in zip(cache.entries, names):
        entry.past_keys = run.cache[k][:, : len(prefix)].to(cfg.device, cfg.dtype)
        entry.past_values = run.cache[v][:, : len(prefix)].to(cfg.device, cfg.dtype)
    cache.previous_attention_mask = torch.ones((1, len(prefix)), dtype=torch.long, device=cfg.device)
    return True


def _repeat_rows(cache, n: int) -> None:
    """A one-row key/value cache made the cache of ``n`` rows with that prefix (each layer's
    next append concatenates, so the repeated rows are views until then)."""
    for entry in cache.entries:
        entry.past_keys = entry.past_keys.expand(n, -1, -1, -1)
        entry.past_values = entry.past_values.expand(n, -1, -1, -1)
    cache.previous_attention_mask = cache.previous_attention_mask.expand(n, -1)


@dataclass
class MoveEdit:
    """One edit of one position, judged by the move the model writes."""

    board: np.ndarray  # (8, 8) the real board
    edited: np.ndarray  # (8, 8) the board the edit asks the model to believe
    legal_real: np.ndarray  # bool (64,) squares a legal move starts on
    legal_edited: np.ndarray  # bool (64,) the same on the edited board
    move_clean: str  # what the model writes without the edit
    move_edited: str
    move_random: str  # with an edit of the same size along a random direction
    legal_real_texts: set[str]
    legal_edited_texts: set[str]
    readings: dict[int, tuple[int, int]]

    def verdict(self) -> str:
        def judged(text: str) -> str:
            if not text:
                return "no complete move"
            on_edit = "legal" if text in self.legal_edited_texts else "illegal"
            on_real = "legal" if text in self.legal_real_texts else "illegal"
            return f"{text} ({on_edit} on the edited board, {on_real} on the real one)"

        return f"Without the edit the model writes {judged(self.move_clean)}; with it, {judged(self.move_edited)}; along a random direction of the same size, {judged(self.move_random)}."


def edit_piece_move(handle: ModelHandle, probes: dict[int, Probe], moves: tuple[int, ...], square: int, value: int, layers: list[int], scale: float = 1.0, run=None) -> MoveEdit:
    """Make the model believe ``value`` (signed piece type, 0 = empty) stands on ``square`` and
    read the move it writes (``run``: ``probes.position_pass`` of the position, read instead of a
    pass over the moves before it)."""
    game = handle.game
    moves, state, edited, legal_edited = checked_edit(handle, probes, moves, square, value, layers)
    # One batch: the position unedited, edited, and edited along a random direction of that size.
    batch = make_batch([moves] * 3, [square] * 3, [value + 6] * 3, game)
    readings: dict = {}
    clean, after, random = greedy_moves(handle, probes, batch, layers, [0.0, scale, scale], random_seed=0, readings=readings, random_rows=[False, False, True], run=run)
    return MoveEdit(
        board=state.board, edited=edited, legal_real=state.legal, legal_edited=legal_edited,
        move_clean=clean, move_edited=after, move_random=random,
        legal_real_texts=game.legal_move_texts(moves), legal_edited_texts=game.legal_move_texts(moves, (square, value)),
        readings={layer: (int(b[1]), int(a[1])) for layer, (b, a) in sorted(readings.items())},  # the edited row
    )


def removal_sweep(handle: ModelHandle, probes: dict[int, Probe], examples, layers: list[int], scales: list[float], seed: int = 0, progress=None) -> dict[str, list[float]]:
    """Karvonen's measurement over ``game.edit_examples`` (one movable piece of the side to move
    removed each): per scale, the share of the model's greedy moves that are legal on the edited
    boards, along the probe directions and along random ones of the same size. Scale 0 edits
    nothing either way: written once for both. ``progress(text, fraction)`` after each run."""
    game: Game = handle.game
    batch = make_batch([e[0] for e in examples], np.array([e[1] for e in examples]), np.full(len(examples), 6), game)  # class 6: empty
    legal_sets = [game.legal_move_texts(e[0], (e[1], 0)) for e in examples]
    out: dict[str, list[float]] = {"scale": list(scales), "probe": [], "random": []}
    runs = [(s, key, rnd) for s in scales for key, rnd in (("probe", None), ("random", seed)) if not (s == 0 and key == "random")]
    for i, (s, key, rnd) in enumerate(runs):
        if progress:
            progress(f"writing {len(examples)} moves at scale {s:g}, {'probe' if rnd is None else 'random'} direction ({i + 1} of {len(runs)})", i / len(runs))
        written = greedy_moves(handle, probes, batch, layers, s, random_seed=rnd)
        out[key].append(float(np.mean([w in legal for w, legal in zip(written, legal_sets)])))
        if s == 0:
            out["random"].append(out[key][-1])
    if progress:
        progress("done", 1.0)
    return out
