"""Chess rules for BoardLens: python-chess underneath, batched records on top.

python-chess (``chess.Board``) decides every rule: legal moves, castling, en passant, promotion,
check. What this module adds is speed and shape: a batch of games is played or replayed once, and
each position is recorded as a few 64-bit bitboards (python ints) that numpy unpacks for all
positions at once at the end, instead of building a board array per position in Python. Legal move
lists are kept flat (one row per legal move, with the index of its position), so the trainer can
turn them into next-token masks with array operations.

Conventions:
- square index = python-chess's (``chess.SQUARES``: a1 = 0, b1 = 1, ..., h8 = 63); drawn with rank 1
  at the bottom, so row = rank and column = file, exactly as Othello's row * size + col;
- board values: 0 empty, +1..+6 white pawn, knight, bishop, rook, queen, king (python-chess piece
  types), -1..-6 the black pieces; the 13 classes of a probe are ``value + 6``;
- a move is one int: ``from + 64 * to + 4096 * promotion`` (promotion = python-chess piece type 2..5,
  0 for none); a game is a row of move ints padded with -1;
- a game ends at checkmate, stalemate, insufficient material, the fifty-move rule (100 half-moves
  without capture or pawn move) or the third occurrence of a position (threefold repetition):
  a random player is taken to claim every draw it can, the moment it can.
"""

from __future__ import annotations

import re
import chess
import numpy as np

from core.games.chess.records import (  # noqa: F401 - the records and rules every engine shares, re-exported
    WHITE,
    BLACK,
    N_SQUARES,
    PIECE_LETTERS,
    PROMOTIONS,
    TERMINATIONS,
    _BOARD_FIELDS,
    MoveError,
    encode_move,
    decode_move,
    move_parts,
    square_to_label,
    uci,
    Replay,
    unpack_bits,
    _unpack_boards,
    _DARK,
    _LIGHT,
    insufficient_material,
    pick,
    _bitboards,
    _Recorder,
    _groups_python_chess,
    _run_python_chess,
    _end,
    _next_code,
    _check_after_end,
    _check_pads,
    _safe_uci,
    _why_illegal,
    board_after,
)


# From this many games on, playing them all a step at a time in numpy beats one position at a
# time with cozy-chess (games of 128 moves, best of 5: even at 48 games, 1.3x faster at 64, 2x at
# 128, 2.5x at 1,000; 0.4x at 16, where a numpy step's fixed cost is spread over few games).
LOCKSTEP_MIN_GAMES = 48


def _run(n: int, max_moves: int, games: np.ndarray | None, uniforms: np.ndarray | None) -> tuple[np.ndarray, Replay]:
    """Play (``uniforms`` given) or replay (``games`` given) ``n`` games of at most ``max_moves``:
    a large batch all at once in numpy; else one position at a time with the
    compiled move generator when it is installed, or python-chess (all give the same records)."""
    _check_pads(games)
    if n >= LOCKSTEP_MIN_GAMES:
        from core.games.chess.lockstep import run_lockstep

        return run_lockstep(n, max_moves, uniforms, games)
    if ENGINE == "cozy-chess":
        from core.games.chess.fast import run_cozy

        return run_cozy(n, max_moves, games, uniforms)
    return _run_python_chess(n, max_moves, games, uniforms)


def _engine() -> str:
    try:
        import cozy_chess  # noqa: F401
    except ImportError:
        return "python-chess"
    return "cozy-chess"


ENGINE = _engine()


def random_games(n: int, max_moves: int = 128, seed: int = 0) -> np.ndarray:
    """``n`` games of uniformly random legal moves: ``int32 (n, max_moves)``, -1 after the end.

    Row ``i`` depends only on ``(seed, i)``: the same seed gives the same games in any batch size.
    """
    return random_games_with_replay(n, max_moves, seed)[0]


def random_games_with_replay(n: int, max_moves: int = 128, seed: int = 0) -> tuple[np.ndarray, Replay]:
    """Like ``random_games``, with the records of playing them (no second pass)."""
    uniforms = np.random.default_rng(seed).random((n, max_moves))
    return _run(n, max_moves, None, uniforms)


def games_from_uniforms(uniforms: np.ndarray) -> tuple[np.ndarray, Replay]:
    """Random games driven by one number in [0, 1) per game and move (``uniforms (n, max_moves)``),
    with their records: row ``g`` depends on ``uniforms[g]`` only."""
    uniforms = np.asarray(uniforms, dtype=np.float64)
    if uniforms.ndim != 2:
        raise ValueError(f"uniforms must be (n_games, max_moves), got {uniforms.shape}")
    return _run(uniforms.shape[0], uniforms.shape[1], None, uniforms)


def replay(games: np.ndarray) -> Replay:
    """Replay games of move ints (rows padded with -1) and record every position.

    Raises ``MoveError`` naming the game and move if a move is illegal or follows the end.
    """
    games = np.asarray(games)
    if games.ndim == 1:
        games = games[None, :]
    if games.ndim != 2:
        raise ValueError(f"games must be a 2-d array (n_games, n_moves), got shape {games.shape}")
    _, rep = _run(games.shape[0], games.shape[1], games.astype(np.int64), None)
    return rep


_UCI = re.compile(r"([a-h][1-8])([a-h][1-8])([qrbnQRBN](?![1-8]))?")


_MOVE_NUMBER = re.compile(r"^\d+\.+")


_RESULTS = {"1-0", "0-1", "1/2-1/2", "*", "½-½"}


def parse_moves(text: str, prefix: tuple[int, ...] = ()) -> list[int]:
    """Read moves after ``prefix``: UCI (``e2e4 e7e5``, ``e2e4e7e5``, ``e7e8q``), SAN (``Nf3``),
    or a PGN move list (``1. e4 e5 2. Nf3``; comments, NAGs and the result are skipped).

    Raises ``ValueError`` with the move number and the reason for the first move that cannot be
    read or played.
    """
    board = board_after(prefix)
    # Headers ([White "…"]), comments ({…}), variations and NAGs ($1) are skipped, as in a PGN file
    # from any chess site; a move's !, ?, !?, ?! annotation too. A ";" separates (";1.e4 e5" is
    # the ChessGPT game string), it does not start a comment.
    text = re.sub(r"\[[^\]]*\]|\{[^}]*\}|\([^)]*\)|\$\d+", " ", text.replace(",", " ").replace(";", " "))
    out: list[int] = []
    for word in text.split():
        word = re.sub(r"[!?]+$", "", _MOVE_NUMBER.sub("", word))
        if not word or word in _RESULTS:
            continue
        for piece in _split_word(word):
            number = len(prefix) + len(out) + 1
            try:
                move = _read_move(board, piece)
            except ValueError as exc:
                raise ValueError(f"move {number} ({piece!r}): {exc}") from None
            out.append(encode_move(move))
            board.push(move)
    return out


def _split_word(word: str) -> list[str]:
    """``e2e4e7e5`` -> ``["e2e4", "e7e5"]``; anything else stays one word (SAN)."""
    if re.fullmatch(r"(?:[a-h][1-8][a-h][1-8][qrbnQRBN]?)+", word):
        return [m.group(0) for m in _UCI.finditer(word)]
    return [word]


def _read_move(board: chess.Board, word: str) -> chess.Move:
    if board.is_game_over(claim_draw=False) or _claimed(board):
        raise ValueError("the game is already over")
    if _UCI.fullmatch(word):
        move = chess.Move.from_uci(word.lower())
        if move not in board.legal_moves:
            raise ValueError(_why_illegal(board, encode_move(move)))
        return move
    try:
        move = board.parse_san(word)
    except chess.IllegalMoveError:
        raise ValueError(f"{word} is not legal here ({'white' if board.turn else 'black'} to move)") from None
    except chess.AmbiguousMoveError:
        raise ValueError(f"{word} is ambiguous: say which piece (e.g. Nbd2) or use UCI (b1d2)") from None
    except (chess.InvalidMoveError, ValueError):
        raise ValueError(f"{word} is not a move: use UCI like e2e4 or SAN like Nf3") from None
    if not move:  # python-chess reads "--", "0000" and "Z0" as the null move, which no game has
        raise ValueError(f"{word} is a null move (a pass), which chess does not have")
    return move


def _claimed(board: chess.Board) -> bool:
    """Draws this module ends a game at that python-chess leaves to a claim."""
    return board.halfmove_clock >= 100 or board.is_repetition(3)


def san_moves(moves: tuple[int, ...] | list[int]) -> list[str]:
    board = chess.Board()
    out = []
    for code in moves:
        move = decode_move(code)
        out.append(board.san(move))
        board.push(move)
    return out


def format_pgn(moves: tuple[int, ...] | list[int]) -> str:
    """``1. e4 e5 2. Nf3`` for the moves."""
    parts = []
    for i, san in enumerate(san_moves(moves)):
        parts.append(f"{i // 2 + 1}. {san}" if i % 2 == 0 else san)
    return " ".join(parts)

