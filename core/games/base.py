"""The game plug-in interface: what every page and every ``core`` module may ask of a game.

A ``Game`` is one game with one tokenizer (Othello 8x8; chess with UCI square tokens; ...). Moves
are ints everywhere (Othello: the square; chess: from + 64 * to + 4096 * promotion), so a game is a
tuple of ints that caches, URLs and sessions can hold. Everything that depends on the rules or on
the token layout is a method here; interp, viz and pages never import a game module.

A move may be several tokens. Per token position the game says which move the *next* token
belongs to, what kind of token it is (``token_kinds``) and which tokens are legal there, weighted
by how often a uniformly random player would produce each (``TokenBatch``): the trainer's target,
the evaluation's legal set and the lens's legality all come from that one record.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


def grid_label(square: int, cols: int) -> str:
    """Column letter then row number from 1 (``19 -> "d3"`` with 8 columns): the label of a square
    on every board here (chess's square names follow the same rule)."""
    row, col = divmod(int(square), cols)
    return f"{chr(ord('a') + col)}{row + 1}"


class IllegalMoveError(ValueError):
    """A move that cannot be played here; the message says why in the user's terms."""


class MoveError(ValueError):
    """A move a batched ``replay`` cannot accept; ``game`` and ``move`` index the offending entry."""

    def __init__(self, game: int, move: int, reason: str):
        super().__init__(f"game {game}, move {move}: {reason}")
        self.game, self.move = game, move


@dataclass
class TokenBatch:
    """Model inputs for a batch of games, and what a legal next token is at every position.

    ``tokens[g, p]`` is read at position ``p``; the output there predicts the token at ``p + 1``.
    ``weights[g, p, v]`` > 0 exactly when token ``v`` is legal there, proportional to the chance
    that a uniformly random player's game continues with it (its normalised rows are the training
    target). ``kind[g, p]`` indexes ``Game.token_kinds`` for the predicted token; ``move[g, p]`` is
    the index of the move that token belongs to. ``valid`` marks positions with a legal next token.
    """

    tokens: np.ndarray  # int64 (n, ctx)
    weights: np.ndarray  # float32 (n, ctx, d_vocab)
    kind: np.ndarray  # int8 (n, ctx)
    move: np.ndarray  # int32 (n, ctx)

    @property
    def legal(self) -> np.ndarray:
        return self.weights > 0

    @property
    def valid(self) -> np.ndarray:
        return self.legal.any(axis=-1)


class GameState(ABC):
    """The position after some moves, as the UI needs it."""

    # Every state has: ``moves`` (tuple of move ints), ``board`` (int8 (rows, cols), the game's
    # piece codes), ``legal`` (bool (rows*cols,): squares a legal move starts on), ``legal_moves``
    # (tuple of move ints), ``last_squares`` (squares of the last move, to highlight) and ``mover``.

    @property
    @abstractmethod
    def is_over(self) -> bool: ...

    @abstractmethod
    def status(self) -> str: ...


class Game(ABC):
    """One game and one tokenizer (see the module docstring)."""

    name: str  # the game's family: "othello", "chess"
    key: str  # unique: the game with its parameters and tokenizer ("othello8", "chess-uci-squares")
    title: str  # for people: "Othello 8×8", "Chess (UCI square tokens)"
    rows: int
    cols: int
    d_vocab: int
    n_ctx: int  # context of a model of this game and tokenizer
    token_kinds: tuple[str, ...]  # names of the kinds of predicted tokens ("move"; "from", "to", ...)
    pad_token: int = 0
    square_moves: bool  # True when a move is one square (a click plays it); False: pick a piece first
    board_style: dict  # keyword arguments for ``core.viz.board.board_figure`` (how pieces look)
    notations: dict[str, str]  # label -> ``parse_moves`` notation, when the game has several
    move_placeholder: str  # example moves for a text box
    move_help: str  # how moves are written

    @property
    def n_squares(self) -> int:
        return self.rows * self.cols

    # -- text --------------------------------------------------------------------------------
    @abstractmethod
    def parse_moves(self, text: str, prefix: tuple[int, ...] = (), notation: str = "auto") -> list[int]:
        """Moves typed after ``prefix`` (``ValueError`` saying which move and why)."""

    def read_moves(self, text: str, prefix: tuple[int, ...] = (), notation: str = "auto") -> tuple[list[int], str]:
        """``parse_moves``, and a sentence saying how the text was read when that is not the
        obvious reading ("" otherwise), for the page to show beside the moves it played."""
        return self.parse_moves(text, prefix, notation), ""

    @abstractmethod
    def format_moves(self, moves, sep: str = " ") -> str:
        """The moves as people read them."""

    @abstractmethod
    def url_moves(self, moves) -> str:
        """The moves in a compact form for a link; ``parse_moves`` reads it back."""

    @abstractmethod
    def move_label(self, move: int) -> str:
        """One move, readable without its position (Othello ``d3``; chess UCI ``e2e4``)."""

    def move_text(self, moves, move: int) -> str:
        """One move as the game writes it after ``moves`` (chess: its SAN there)."""
        return self.move_label(move)

    @abstractmethod
    def square_label(self, square: int) -> str: ...

    # -- positions ---------------------------------------------------------------------------
    @abstractmethod
    def state(self, moves) -> GameState:
        """The position after ``moves`` (``IllegalMoveError`` naming the first bad move)."""

    def play(self, state: GameState, move: int) -> GameState:
        if move not in state.legal_moves:
            raise IllegalMoveError(self.explain_illegal(state, move))
        return self.state(tuple(state.moves) + (int(move),))

    @abstractmethod
    def explain_illegal(self, state: GameState, move: int) -> str: ...

    @abstractmethod
    def moves_from(self, state: GameState, square: int) -> list[int]:
        """Legal moves that start on ``square`` (Othello: playing it)."""

    @abstractmethod
    def move_squares(self, move: int) -> tuple[int, int]:
        """(square a move starts on, square it ends on); the same square for Othello."""

    # -- a researcher's own games ------------------------------------------------------------
    def read_game_file(self, text: str, limit: int = 10_000, progress=None) -> tuple[list[tuple[int, ...]], list[tuple[int, str]], list[dict[str, str]]]:
        """Games written in a file: ``(games, skipped, headers)``. Default: one game per line, its
        moves as ``parse_moves`` reads them (blank lines and ``#`` comments ignored); a line that
        does not make a legal game is skipped, ``(line number, why)``. At most ``limit`` games."""
        games, skipped = [], []
        lines = text.splitlines()
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if len(games) >= limit:
                skipped.append((number, f"past the first {limit:,} games"))
                break
            try:
                moves = tuple(self.parse_moves(line))
                self.state(moves)
            except ValueError as exc:
                skipped.append((number, str(exc)[:160]))
                continue
            if moves:
                games.append(moves)
            if progress and number % 200 == 0:
                progress(f"reading games: line {number:,} of {len(lines):,}", number / max(len(lines), 1))
        return games, skipped, [{} for _ in games]

    # -- batches -----------------------------------------------------------------------------
    @abstractmethod
    def random_games(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` games of uniformly random legal moves, ``(n, max moves)`` padded with -1."""

    @abstractmethod
    def games_from_uniforms(self, uniforms: np.ndarray) -> np.ndarray:
        """Random games where row g depends only on ``uniforms[g]`` (one number in [0, 1) per
        move, ``(n, max_moves)``): the trainer's games, the same however a batch is split."""

    def token_batch_from_uniforms(self, uniforms: np.ndarray) -> TokenBatch:
        """``token_batch(games_from_uniforms(uniforms))``; a game may do it in one engine pass."""
        return self.token_batch(self.games_from_uniforms(uniforms))

    @abstractmethod
    def replay(self, games: np.ndarray):
        """Per-position records of a batch of games (the game's own ``Replay``)."""

    @abstractmethod
    def token_batch(self, games: np.ndarray) -> TokenBatch:
        """Model inputs and next-token legality for a batch of games (cut to ``n_ctx``)."""

    @abstractmethod
    def batch_tokens(self, games: np.ndarray, length: int = 0) -> np.ndarray:
        """``int64 (n, length or n_ctx)``: a batch of games as tokens (pad after a game's end);
        ``length = n_ctx + 1`` also gives every position's next token."""

    def batch_token_mask(self, games: np.ndarray, length: int = 0) -> np.ndarray:
        """``bool (n, length or n_ctx)``: where ``batch_tokens`` holds a token of the game (not
        the padding after its end)."""
        return self.batch_tokens(games, length) != self.pad_token

    @abstractmethod
    def game_tokens(self, moves) -> np.ndarray:
        """``int64 (pos,)``: the model input for one game, cut to the context."""

    def square_token(self, square: int) -> int:
        """The token that names ``square`` (chess: as a from- or to-square)."""
        hits = np.flatnonzero(self.token_square() == int(square))
        if not len(hits):
            raise ValueError(f"no token names square {square}")
        return int(hits[0])

    @abstractmethod
    def move_tokens(self, move: int, moves: tuple[int, ...] = ()) -> list[int]:
        """The tokens of one move, in order (played after ``moves``, where that matters)."""

    def move_token_counts(self, moves) -> np.ndarray:
        """``int (len(moves),)``: how many tokens each move of the game is written with."""
        return np.array([len(self.move_tokens(m)) for m in moves], dtype=np.int64)

    def fit_moves(self, moves) -> tuple[int, ...]:
        """The longest prefix of ``moves`` whose tokens fit in the model's context (the model can
        read the board after its last move)."""
        return tuple(int(m) for m in moves)[: self.n_ctx]  # one token per move

    def token_labels(self, moves) -> list[str]:
        """A label per input token of the game (what the model reads at each position)."""
        return [self.move_label(m) for m in list(moves)[: self.n_ctx]]

    @abstractmethod
    def token_square(self) -> np.ndarray:
        """``int (d_vocab,)``: the board square each token names, -1 for tokens that name none."""

    read_positions = "the token of each move"  # where probes and unit indexes read a board
    move_end_token: int | None = None  # the token that ends every move, for games whose moves vary in length

    def token_context(self, moves, move_index: int, before: int = 24, after: int = 14) -> tuple[str, str, str] | None:
        """For games written as text: the text before the token where the board after move
        ``move_index`` is read, that token, and the text after it; None for other games."""
        return None

    @property
    def tokens_name_squares(self) -> bool:
        """Whether a move's first token names a square (Othello's move, chess's from-square), so
        a token distribution can be drawn on the board; PGN characters do not."""
        return self.square_moves or bool((self.token_square() >= 0).any())

    @property
    def vocab(self) -> tuple[str, ...]:
        """A short name per token (what a token-level chart labels its columns with)."""
        return tuple(str(t) for t in range(self.d_vocab))

    def candidate_tokens(self) -> np.ndarray:
        """``bool (d_vocab,)``: the tokens that could stand where a move's token is predicted (the
        "illegal" side of legal-minus-illegal counts those not legal): tokens naming a square."""
        named = self.token_square() >= 0
        named[self.pad_token] = False
        return named

    def legality_kinds(self, batch: TokenBatch) -> tuple[tuple[str, ...], np.ndarray]:
        """Names and ``int (n, ctx)`` kind of each position's predicted token, for the lens
        legality chart's split (default: ``token_kinds``; a game may split finer)."""
        return self.token_kinds, batch.kind
