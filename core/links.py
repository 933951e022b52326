"""Reading a shared link's parameters: never an exception, always a short message a person can read.

A link is the app's front door for strangers (``?model=…&moves=…&feature=…``), so these functions
are pure and fuzzed: whatever the text, they return the values to use and the problems to show.
Echoed text is cut to ``ECHO`` characters (a 5,000-character parameter must not fill the page).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from core.words import count

ECHO = 60


def echo(text: str, limit: int = ECHO) -> str:
    """``text`` quoted and cut for a message."""
    return repr(text[:limit]) + ("…" if len(text) > limit else "")


def read_game_link(params: Mapping[str, str], specs: Mapping[str, object], default: str) -> tuple[str, tuple[int, ...], list[str]]:
    """``(model name, moves, problems)`` from a link's ``model`` and ``moves``.

    ``specs`` maps model names to specs with a ``game_plugin``; an unknown model falls back to
    ``default``, moves that do not parse or play fall back to a new game, each with a message.
    """
    problems = []
    name = params.get("model") or default
    if name not in specs:
        problems.append(f"Unknown model {echo(name)} in the link; using {default}. Known: {', '.join(specs)}.")
        name = default
    text = params.get("moves", "")
    moves: tuple[int, ...] = ()
    if text and getattr(specs[name], "kind", "game") != "game":
        problems.append(f"{name} reads text, not moves: the link's moves={echo(text)} are ignored.")
    elif text:
        game = specs[name].game_plugin
        try:
            moves = _playable(game, text)
        except ValueError as exc:
            moves = _longest_playable_prefix(game, text)
            kept = f"Kept the first {count(len(moves), 'move')}, up to where it stops." if moves else "Starting a new game."
            problems.append(f"Could not restore the game from the link (moves={echo(text, 80)}) to its end: {str(exc)[:300]}. {kept}")
    return name, moves, problems


def _playable(game, text: str) -> tuple[int, ...]:
    moves = tuple(game.parse_moves(text))
    game.state(moves)
    return moves


def _longest_playable_prefix(game, text: str) -> tuple[int, ...]:
    """The moves of the longest start of ``text``, cut where a move may end, that is a legal game.

    A move may end before a space or comma, or where a letter follows a digit or a promotion
    letter (``d3|c5``, ``e2|e4|e7|e5``: UCI also has cuts inside a move, between its squares, and
    before a promotion letter). Starts are tried from the left; three failed cuts in a row end the
    search (no move spans more than two cuts)."""
    best: tuple[int, ...] = ()
    failed = 0
    for i in range(1, len(text)):
        if not (text[i] in " ," or (text[i].isalpha() and (text[i - 1].isdigit() or text[i - 1] in "qrbnQRBN"))):
            continue
        try:
            best, failed = _playable(game, text[:i]), 0
        except ValueError:
            failed += 1
            if failed == 3:
                break
    return best


def read_prompt_link(params: Mapping[str, str], limit: int) -> tuple[str | None, str | None]:
    """``(prompt, problem)`` from a link's ``prompt``: None when there is none; a prompt longer than
    ``limit`` characters is cut there, and the problem says so."""
    text = params.get("prompt")
    if text is None:
        return None, None
    text = str(text).replace("\x00", "")
    if len(text) > limit:
        return text[:limit], f"The link's prompt has {len(text):,} characters; the first {limit:,} are used."
    return text, None


def read_choice(param: str, text: str, valid: Sequence[str] | range, what: str) -> tuple[str | int | None, str | None]:
    """A page parameter: ``(value, None)`` when valid, else ``(None, problem)``."""
    if isinstance(valid, range):
        try:
            value = int(text.strip()) if len(text) < 20 else None
        except ValueError:
            value = None
        if value is not None and value in valid:
            return value, None
        return None, f"The link's {param}={echo(text)} is not a {what} (0–{valid.stop - 1}); showing the default."
    if text in valid:
        return text, None
    known = ", ".join(list(valid)[:10]) + (", …" if len(valid) > 10 else "")
    return None, f"The link's {param}={echo(text)} is not a {what} of this model ({known}); showing the default."
