"""Find a game plug-in by what a model's config says (``game``, ``board_size``, ``tokenizer``)."""

from __future__ import annotations

from functools import lru_cache

from core.games.base import Game

GAMES = ("othello", "chess")


@lru_cache(maxsize=None)
def get_game(name: str = "othello", board_size: int = 8, tokenizer: str = "", n_ctx: int = 0, vocab: tuple[str, ...] | None = None) -> Game:
    """The plug-in for a game; ``ValueError`` for a game or setting it does not know.

    ``vocab``: a checkpoint's own token list, when it ships one (chess ``uci-squares``)."""
    if name == "othello":
        from core.games.othello.game import OthelloGame

        return OthelloGame(int(board_size))
    if name == "chess":
        from core.games.chess.game import ChessGame

        return ChessGame(tokenizer or "uci-squares", int(n_ctx or 0), vocab=vocab)
    raise ValueError(f"unknown game {name!r} (known: {', '.join(GAMES)})")


def as_game(game_or_size: Game | int) -> Game:
    """Accept a game or, as older callers pass, an Othello board size."""
    if isinstance(game_or_size, Game):
        return game_or_size
    return get_game("othello", int(game_or_size))
