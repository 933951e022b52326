"""A researcher's own games as a corpus: a PGN file (chess) or a game-per-line file (Othello).

The file is read by the game plug-in (``Game.read_game_file``: python-chess for PGN), sizes are
checked first, games the plug-in cannot read are skipped and counted with the reason, and the
result is kept by the sha256 of the file's bytes, so every page that asks for the same upload
shares one parse. The games come out as the engine's usual ``(n, T)`` array padded with -1, the
shape random games have, so any corpus statistic can read them instead.
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from threading import Lock

import numpy as np

from core.games.base import Game

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_GAMES = 10_000
MAX_PLIES = 400  # a game longer than this is cut: no model here reads further


class GameFileError(ValueError):
    """A games file that cannot be used at all (too big, not text, no readable game)."""


@dataclass(frozen=True)
class GameCorpus:
    name: str
    digest: str  # sha256 of the file's bytes
    games: np.ndarray  # int (n, T) moves, -1 after each game's end
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (game or line number, why)
    headers: list[dict[str, str]] = field(default_factory=list)  # per kept game (PGN headers)

    @property
    def n_games(self) -> int:
        return len(self.games)

    def summary(self) -> str:
        """One line a page can show: what the corpus is and what was skipped."""
        text = f"{self.name}: {self.n_games:,} games"
        if self.skipped:
            reasons = Counter(reason.split(" (")[0][:60] for _, reason in self.skipped)
            text += f"; {len(self.skipped):,} skipped (" + "; ".join(f"{n}× {r}" for r, n in reasons.most_common(3)) + ")"
        return text

    def ratings(self) -> np.ndarray:
        """``float (n, 2)``: White's and Black's ratings from the headers (nan where absent)."""
        out = np.full((self.n_games, 2), np.nan)
        for i, h in enumerate(self.headers):
            for j, key in enumerate(("WhiteElo", "BlackElo")):
                try:
                    out[i, j] = float(h.get(key, "nan"))
                except ValueError:
                    pass
        return out


def read_corpus(data: bytes, name: str, game: Game, progress=None) -> GameCorpus:
    """Parse an uploaded games file (``GameFileError`` when nothing in it is usable)."""
    if len(data) > MAX_FILE_BYTES:
        raise GameFileError(f"{name}: {len(data):,} bytes is more than a games file may have here ({MAX_FILE_BYTES:,})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # old PGN files are often Latin-1; every byte decodes
    if "\x00" in text:
        raise GameFileError(f"{name}: a binary file, not a text file of games")
    games, skipped, headers = game.read_game_file(text, limit=MAX_GAMES, progress=progress)
    if not games:
        first = f" (first: game {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise GameFileError(f"{name}: no readable game{first}")
    width = min(max(len(g) for g in games), MAX_PLIES)
    array = np.full((len(games), width), -1, dtype=np.int64)
    for i, moves in enumerate(games):
        array[i, : min(len(moves), width)] = moves[:width]
    return GameCorpus(name, hashlib.sha256(data).hexdigest(), array, skipped, headers)


_CACHE: OrderedDict[tuple[str, str], GameCorpus] = OrderedDict()
_LOCK = Lock()


def cached_corpus(data: bytes, name: str, game: Game, progress=None) -> GameCorpus:
    """``read_corpus``, kept per (game, file content) for the process (the last 8)."""
    key = (f"{game.name}{game.rows}", hashlib.sha256(data).hexdigest())
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    corpus = read_corpus(data, name, game, progress)
    with _LOCK:
        _CACHE[key] = corpus
        while len(_CACHE) > 8:
            _CACHE.popitem(last=False)
    return corpus
