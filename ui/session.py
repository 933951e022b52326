"""The state every page shares in one browser session and in its link: the model and the game
(``st.session_state``, mirrored into the query string so that any view is a link), the moves
played, linked page settings, and messages shown once on the next page run (user text as plain text).
"""

from __future__ import annotations

import urllib.parse

import numpy as np
import streamlit as st

from core.games.base import Game, GameState, IllegalMoveError
from core.links import read_choice, read_game_link, read_prompt_link
from core.models.registry import ModelSpec, default_model_name
from ui.messages import flash, monospace, show_messages
from ui.caches import model_specs


MODEL, MOVES = "model", "moves"


PROMPT = "prompt"  # a text model's prompt (session state and link parameter)


PROMPT_LINK_LIMIT = 4000  # characters of a prompt a link may carry


DEFAULT_PROMPT = 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n'


PICKED = "picked_square"  # a piece chosen on the board, for games whose moves start on a piece


def init_state() -> None:
    """On a session's first run, restore model and game from the URL (reporting bad values)."""
    if MODEL in st.session_state:
        return
    params = st.query_params.to_dict()
    name, moves, problems = read_game_link(params, model_specs(), default_model_name())
    st.session_state[MODEL] = name
    st.session_state[MOVES] = moves
    prompt, problem = read_prompt_link(params, PROMPT_LINK_LIMIT)
    st.session_state[PROMPT] = prompt if prompt is not None else DEFAULT_PROMPT
    for problem in problems + ([problem] if problem else []):
        flash("error", problem)


def sync_url(extra: dict[str, str] | None = None) -> None:
    """Write the current model and game (and a page's own ``extra`` parameters) into the query
    string (only what changed)."""
    if model_spec().kind == "text":
        prompt = st.session_state.get(PROMPT, "")
        position = {PROMPT: prompt[:PROMPT_LINK_LIMIT]} if prompt and prompt != DEFAULT_PROMPT else {}
    else:
        moves = current_game().url_moves(st.session_state[MOVES])
        position = {MOVES: moves} if moves else {}
    from ui.corpus import link_params

    wanted = {MODEL: st.session_state[MODEL], **position, **link_params(), **(extra or {})}
    if dict(st.query_params) != wanted:
        st.query_params.from_dict(wanted)
    share_control(wanted)


def share_link(params: dict[str, str]) -> str:
    """The full link of this view: the page's address (as the browser sees it) and its parameters."""
    base = st.context.url or ""
    if base and not urllib.parse.urlsplit(base).path:
        base += "/"  # the main page: http://host/?model=… as a browser writes it
    query = urllib.parse.urlencode(params)
    return f"{base}?{query}" if query else base


def share_control(params: dict[str, str]) -> None:
    """"Share this view" in the sidebar: the link, which is also the address bar's."""
    with st.sidebar.popover("Share this view", icon=":material/share:", width="stretch"):
        st.caption("This link (also in the address bar) opens this page with the same model, game and page settings.")
        monospace(share_link(params))


def model_spec() -> ModelSpec:
    return model_specs()[st.session_state[MODEL]]


def current_game() -> Game:
    """The game the chosen model plays (rules, tokens, how to draw it)."""
    return model_spec().game_plugin


def current_state() -> GameState:
    return current_game().state(st.session_state[MOVES])


def set_moves(moves: tuple[int, ...]) -> None:
    st.session_state[MOVES] = tuple(int(m) for m in moves)
    st.session_state.pop(PICKED, None)


def play_move(move: int) -> bool:
    """Play ``move`` for the side to move; an illegal move is explained, not played."""
    try:
        set_moves(current_game().play(current_state(), move).moves)
        return True
    except IllegalMoveError as exc:
        flash("warning", f"Illegal move: {exc}")
        return False


def play_square(square: int) -> bool:
    """Play the move on ``square`` (games whose moves are one square, e.g. Othello)."""
    return play_move(square)


def undo_move() -> None:
    set_moves(st.session_state[MOVES][:-1])


def play_random_move() -> None:
    move = random_legal_move(current_state())
    if move is None:
        flash("info", "The game is over: there is no move to play.")
    else:
        play_move(move)


def on_model_change() -> None:
    """Keep the game when the new model plays the same game; otherwise start a new one and say so."""
    name = st.session_state["model_picker"]
    new, old = model_specs()[name], model_specs()[st.session_state[MODEL]]
    st.session_state[MODEL] = name
    st.session_state.pop(PICKED, None)
    if new.kind != "game":
        return  # a text model reads the prompt; the game stays for when a game model is picked again
    new_game = new.game_plugin
    same = old.kind == "game" and (new_game.name, new_game.rows) == (old.game_plugin.name, old.game_plugin.rows)
    if not same and st.session_state[MOVES]:
        set_moves(())
        flash("info", f"{name} plays {new_game.title}: started a new game.")


def random_legal_move(state: GameState, rng: np.random.Generator | None = None) -> int | None:
    legal = state.legal_moves
    if not len(legal) or state.is_over:
        return None
    return int((rng or np.random.default_rng()).choice(legal))


def url_choice(param: str, valid: list[str] | range, what: str) -> str | int | None:
    """A page parameter from the link, read once per session: the value if valid, else None with
    the problem shown (the page goes on with its default)."""
    seen = st.session_state.setdefault("_url_read", set())
    if param in seen:
        return None
    seen.add(param)  # later runs write the URL from the widgets, never the other way
    if param not in st.query_params:
        return None
    value, problem = read_choice(param, st.query_params[param], valid, what)
    if problem:
        flash("error", problem)
    return value


def linked_setting(key: str, param: str, options: list, labels: list[str], what: str, default) -> None:
    """Prepare a keyed widget's value: from the link's ``param`` (read once per session; a bad
    value is reported and ignored), else kept while it is still one of ``options``, else ``default``.

    ``labels`` are the options as they appear in the link (one per option)."""
    linked = url_choice(param, labels, what)
    show_messages()  # a bad value is reported beside the setting it was meant for
    if linked is not None:
        st.session_state[key] = options[labels.index(linked)]
    if st.session_state.get(key) not in options:
        st.session_state[key] = default
