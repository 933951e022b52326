"""Fuzzing move text: whatever is typed or linked, every game answers with moves or a ValueError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.games.chess import rules as C
from core.games.base import IllegalMoveError
from core.games.registry import get_game
from tests.fuzzing import count, fuzz

MOVE_CHARS = "abcdefghABCDEFGH0123456789 ,.;:-+=#xXOoNBRQKnbrqk{}()$*!?/\\\t\n³٣"
TEXT = st.one_of(st.text(alphabet=MOVE_CHARS, max_size=60), st.text(max_size=40))
FUZZ = fuzz(1000)
PREFIXES = {"othello8": (), "othello6": (), "chess": tuple(C.parse_moves("e4 e5 Nf3"))}
GAMES = {"othello8": ("othello", 8, ""), "othello6": ("othello", 6, ""), "chess": ("chess", 8, "uci-squares")}


@pytest.mark.parametrize("name", list(GAMES))
@FUZZ
@given(text=TEXT)
def test_any_text_gives_legal_moves_or_a_value_error(name, text):
    count(f"move text ({name})")
    game = get_game(*GAMES[name])
    prefix = PREFIXES[name]
    try:
        moves = game.parse_moves(text, prefix)
    except ValueError as exc:
        assert str(exc)  # a message a person can read
        return
    state = game.state(prefix + tuple(moves))  # what was read is playable
    assert state.moves == prefix + tuple(moves)


def test_a_null_move_is_refused_with_a_reason():
    """python-chess reads "--" and "0000" as the null move; a game of chess has none."""
    for text in ("e4 --", "e4 0000", "--"):
        with pytest.raises(ValueError, match="null move"):
            C.parse_moves(text)


@FUZZ
@given(codes=st.lists(st.integers(min_value=-5, max_value=30_000), max_size=12))
def test_any_move_codes_give_a_state_or_an_illegal_move_error(codes):
    count("move codes (chess)")
    game = get_game("chess")
    try:
        state = game.state(codes)
    except IllegalMoveError as exc:
        assert "move" in str(exc) or "code" in str(exc)
        return
    assert len(state.moves) == len(codes) and all(0 <= m < 4096 * 6 for m in codes)
    assert state.board.shape == (8, 8)
