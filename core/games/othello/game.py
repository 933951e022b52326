"""Othello (any even size up to 8) as a BoardLens game plug-in: one token per move."""

from __future__ import annotations

import numpy as np

from core.games.othello import engine as othello
from core.games.base import Game, TokenBatch
from core.games.othello.play import GameState, explain_illegal, game_state


class OthelloGame(Game):
    name = "othello"
    square_moves = True
    token_kinds = ("move",)
    pad_token = 0
    board_style = {"pieces": "discs"}
    notations = {"auto": "auto", "d3 (column, row from 1)": "label", "C2 (published: row, column from 0)": "published"}
    move_help = "Square labels: column letter then row number (d3). The published Othello-GPT style (row letter, column from 0: C2) is also read."

    def __init__(self, size: int = 8):
        othello.check_size(size)
        self.size = self.rows = self.cols = int(size)
        self.key = f"othello{size}"
        self.title = f"Othello {size}×{size}"
        self.d_vocab = othello.vocab_size(size)
        self.n_ctx = othello.context_length(size)
        self.max_moves = size * size - 4
        self.move_placeholder = self._placeholder()

    def _placeholder(self) -> str:
        """Example moves for the text box: a legal opening of this board size (d3 is a centre
        square on 6×6), in labels, compact, and the published style."""
        moves: tuple[int, ...] = ()
        for _ in range(3):
            moves += (int(game_state(moves, self.size).legal_moves[0]),)
        labels = [othello.square_to_label(m, self.size) for m in moves]
        published = [f"{chr(ord('A') + m // self.size)}{m % self.size}" for m in moves[:2]]
        return f"{' '.join(labels)}  ·  {''.join(labels)}  ·  {' '.join(published)} …"

    # -- text --------------------------------------------------------------------------------
    def parse_moves(self, text: str, prefix=(), notation: str = "auto") -> list[int]:
        """Moves typed after ``prefix``. ``"auto"`` reads ``d3``-style labels (column letter, row
        from 1) and falls back to the published style (``C2``: row letter, column from 0) only when
        the labels do not make a legal game and the published reading does; otherwise the labels'
        error is raised, so a typo never silently switches the notation."""
        return self.read_moves(text, prefix, notation)[0]

    def read_moves(self, text: str, prefix=(), notation: str = "auto") -> tuple[list[int], str]:
        """``parse_moves``, saying so when ``"auto"`` fell back to the published notation (the
        same text can be legal in both: "C2" is c2 in labels and c3 in the published style)."""
        if notation != "auto":
            return othello.parse_moves(text, self.size, notation), ""
        first_error: ValueError | None = None
        for style in ("label", "published"):
            try:
                moves = othello.parse_moves(text, self.size, style)
                game_state(tuple(prefix) + tuple(moves), self.size)
            except ValueError as exc:
                first_error = first_error or exc
                continue
            if style == "label":
                return moves, ""
            return moves, (f"Read in the published notation (row letter, column from 0), as the labels (column letter, row from 1) make no legal game here: "
                           f"{self.format_moves(moves)}. Choose a notation below to read it one way only.")
        raise first_error

    def read_game_file(self, text: str, limit: int = 10_000, progress=None):
        """One game per line, as ``Game.read_game_file``, but checked by batched replays (one
        replay of one game costs about as much as of 256: a file of 10,000 games takes seconds,
        not minutes). A batch with a line that is not a legal game in ``d3`` labels is halved
        until that line is alone; it is then read as the page reads typed moves (the published
        notation tried too) and skipped with the reason if it still is not a game."""
        lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.strip().startswith("#")]
        skipped = [(lines[limit][0], f"past the first {limit:,} games")] if len(lines) > limit else []
        lines = lines[:limit]
        found: dict[int, tuple[int, ...]] = {}
        for start in range(0, len(lines), 256):
            self._read_lines(lines[start : start + 256], found, skipped)
            if progress:
                done = min(start + 256, len(lines))
                progress(f"reading games: {done:,} of {len(lines):,}", done / max(len(lines), 1))
        games = [found[n] for n, _ in lines if found.get(n)]
        skipped.sort()
        return games, skipped, [{} for _ in games]

    def _read_lines(self, lines: list[tuple[int, str]], found: dict, skipped: list) -> None:
        try:
            parsed = [(n, tuple(othello.parse_moves(line, self.size, "label"))) for n, line in lines]
            batch = np.full((len(parsed), max(max(len(m) for _, m in parsed), 1)), -1, dtype=np.int64)
            for i, (_, moves) in enumerate(parsed):
                batch[i, : len(moves)] = moves
            othello.replay(batch, self.size)
            found.update(parsed)
            return
        except ValueError:
            pass
        if len(lines) > 1:
            half = len(lines) // 2
            self._read_lines(lines[:half], found, skipped)
            self._read_lines(lines[half:], found, skipped)
            return
        n, line = lines[0]
        try:
            moves = tuple(self.parse_moves(line))
            self.state(moves)
            found[n] = moves
        except ValueError as exc:
            skipped.append((n, str(exc)[:160]))

    def format_moves(self, moves, sep: str = " ") -> str:
        return othello.format_moves(list(moves), self.size, sep)

    def url_moves(self, moves) -> str:
        return othello.format_moves(list(moves), self.size, sep="")

    def move_label(self, move: int) -> str:
        return othello.square_to_label(int(move), self.size)

    def square_label(self, square: int) -> str:
        return othello.square_to_label(int(square), self.size)

    # -- positions ---------------------------------------------------------------------------
    def state(self, moves) -> GameState:
        return game_state(tuple(moves), self.size)

    def explain_illegal(self, state: GameState, move: int) -> str:
        return explain_illegal(state, int(move))

    def moves_from(self, state: GameState, square: int) -> list[int]:
        return [int(square)] if 0 <= square < self.n_squares and state.legal[square] and not state.is_over else []

    def move_squares(self, move: int) -> tuple[int, int]:
        return int(move), int(move)

    # -- probes ------------------------------------------------------------------------------
    board_target = "mine_theirs_empty"

    def move_positions(self, games: np.ndarray) -> np.ndarray:
        """``int (n, T)``: the token position that reads the board after move t (one token per
        move: position t), -1 past the context."""
        games = np.asarray(games)
        t = np.broadcast_to(np.arange(games.shape[1]), games.shape)
        return np.where(t < self.n_ctx, t, -1)

    def probe_board(self, classes: np.ndarray, target: str, mover: int) -> np.ndarray | None:
        if target == "mine_theirs_empty":
            return np.where(classes == 1, mover, np.where(classes == 2, -mover, 0)).astype(np.int8)
        if target == "black_white_empty":
            return np.where(classes == 1, 1, np.where(classes == 2, -1, 0)).astype(np.int8)
        return None

    # -- batches -----------------------------------------------------------------------------
    def random_games(self, n: int, seed: int = 0) -> np.ndarray:
        return othello.random_games(n, self.size, seed=seed)

    def games_from_uniforms(self, uniforms: np.ndarray) -> np.ndarray:
        return othello.games_from_uniforms(uniforms, self.size)

    def replay(self, games: np.ndarray) -> othello.Replay:
        return othello.replay(games, self.size)

    def token_batch(self, games: np.ndarray) -> TokenBatch:
        """Position t reads move t and predicts move t+1: every legal square weighs the same
        (a uniformly random player)."""
        games = np.asarray(games)[:, : self.n_ctx]
        rep = othello.replay(games, self.size)
        tokens = othello.squares_to_tokens(games, self.size).astype(np.int64)
        weights = np.zeros(games.shape + (self.d_vocab,), dtype=np.float32)
        weights[..., 1:] = rep.legal_next[..., self.token_square()[1:]]
        n, T = games.shape
        move = np.broadcast_to(np.arange(1, T + 1, dtype=np.int32), (n, T)).copy()
        return TokenBatch(tokens, weights, np.zeros((n, T), dtype=np.int8), move)

    def random_token_batch(self, n: int, seed: int) -> TokenBatch:
        return self.token_batch(self.random_games(n, seed))

    def batch_tokens(self, games: np.ndarray, length: int = 0) -> np.ndarray:
        return othello.squares_to_tokens(np.asarray(games)[:, : length or self.n_ctx], self.size).astype(np.int64)

    def legal_on_board(self, board: np.ndarray, player: int) -> np.ndarray:
        """Legal squares for ``player`` on any board (e.g. one an intervention edited)."""
        return othello.legal_moves(board, player)

    def game_tokens(self, moves) -> np.ndarray:
        squares = np.array(list(moves)[: self.n_ctx], dtype=np.int64)
        return othello.squares_to_tokens(squares, self.size).astype(np.int64)

    def token_square(self) -> np.ndarray:
        return othello.tokens_to_squares(np.arange(self.d_vocab), self.size)

    def move_tokens(self, move: int, moves=()) -> list[int]:
        return [othello.square_to_token(int(move), self.size)]
