"""A researcher's own games as a corpus: a PGN file (chess) or a game-per-line file (Othello).

The file is read by the game plug-in (``Game.read_game_file``: python-chess for PGN), sizes are
checked first, games the plug-in cannot read are skipped and counted with the reason, and the
result is kept by the sha256 of the file's bytes, so every page that asks for the same upload
shares one parse. The games come out as the engine's usual ``(n, T)`` array padded with -1, the
shape random games have, so any corpus statistic can read them instead.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from threading import Lock

import numpy as np

from core.games.base import Game
from core.words import count

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
        text = f"{self.name}: {count(self.n_games, 'game')}"
        if self.skipped:
            reasons = Counter(_kind(reason) for _, reason in self.skipped)
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


def _kind(reason: str) -> str:
    """The kind of problem a skip reason names, for counting: without the move it happened at, the
    position, or the detail (``"move 2: d3 is already occupied"`` -> ``"d3 is already occupied"``,
    ``"illegal san: 'Qxf7'"`` -> ``"illegal san"``)."""
    reason = re.sub(r"^(game \d+, )?move \d+: ", "", reason)
    return reason.split(":")[0].split(" (")[0][:60]


def read_corpus(data: bytes, name: str, game: Game, progress=None) -> GameCorpus:
    """Parse an uploaded games file (``GameFileError`` when nothing in it is usable)."""
    if len(data) > MAX_FILE_BYTES:
        raise GameFileError(f"{name}: {len(data):,} bytes is more than a games file may have here ({MAX_FILE_BYTES:,})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # old PGN files are often Latin-1; every byte decodes
    binary: list[tuple[int, str]] = []
    if "\x00" in text:
        lines = text.split("\n")
        binary = [(n, f"binary bytes (NUL) on line {n}: left out") for n, line in enumerate(lines, 1) if "\x00" in line]
        if len(binary) * 2 > sum(bool(line.strip()) for line in lines):  # mostly binary: not a games file at all
            raise GameFileError(f"{name}: a binary file, not a text file of games")
        text = "\n".join("" if "\x00" in line else line for line in lines)  # one damaged line costs that line only
    games, skipped, headers = game.read_game_file(text, limit=MAX_GAMES, progress=progress)
    skipped = sorted(skipped + binary)
    if not games:
        first = f" (first: game {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise GameFileError(f"{name}: no readable game{first}")
    width = min(max(len(g) for g in games), MAX_PLIES)
    array = np.full((len(games), width), -1, dtype=np.int64)
    for i, moves in enumerate(games):
        array[i, : min(len(moves), width)] = moves[:width]
    return GameCorpus(name, hashlib.sha256(data).hexdigest(), array, skipped, headers)


_CACHE: OrderedDict[tuple[str, str], GameCorpus | GameFileError] = OrderedDict()
_LOCK = Lock()


def _key(data: bytes, game: Game, digest: str | None) -> tuple[str, str]:
    return f"{game.name}{game.rows}", digest or hashlib.sha256(data).hexdigest()


def is_cached(data: bytes, game: Game, digest: str | None = None) -> bool:
    """Whether ``cached_corpus`` answers at once (a page shows a progress bar only when not)."""
    with _LOCK:
        return _key(data, game, digest) in _CACHE


def cached_corpus(data: bytes, name: str, game: Game, progress=None, digest: str | None = None) -> GameCorpus:
    """``read_corpus``, kept per (game, file content) for the process (the last 8), a file that
    cannot be used included (its ``GameFileError`` is raised again without a second parse).
    ``digest``: the sha256 of ``data`` when the caller keeps it (a page asks on every rerun, and
    hashing a large upload each time would cost more than the lookup)."""
    key = _key(data, game, digest)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            found = _CACHE[key]
            if isinstance(found, GameFileError):
                raise found
            return found if found.name == name else replace(found, name=name)  # the same games under this upload's name
    try:
        corpus: GameCorpus | GameFileError = read_corpus(data, name, game, progress)
    except GameFileError as exc:
        corpus = exc
    with _LOCK:
        _CACHE[key] = corpus
        while len(_CACHE) > 8:
            _CACHE.popitem(last=False)
    if isinstance(corpus, GameFileError):
        raise corpus
    return corpus


# -- a corpus where random games were read ---------------------------------------------------------

HELD_OUT_EVERY = 5  # game i of a file is held out (probe scoring) when i % 5 == 4: one game in five


def held_out(n_games: int) -> np.ndarray:
    """``bool (n,)``: the games of a file held out from training (one in ``HELD_OUT_EVERY``)."""
    return np.arange(n_games) % HELD_OUT_EVERY == HELD_OUT_EVERY - 1


def corpus_tag(corpus: GameCorpus | None) -> str:
    """``"random"`` or the first 16 hex digits of the file's sha256: part of the key and the name
    of every result computed on it, so results of two corpora never mix."""
    return "random" if corpus is None else corpus.digest[:16]


def corpus_name(corpus: GameCorpus | None) -> str:
    return "random legal games" if corpus is None else corpus.name


def moves_width(game: Game) -> int:
    """Columns of the game's random games (its longest game that fits the context)."""
    return int(getattr(game, "max_moves", game.n_ctx))


def corpus_games(game: Game, corpus: GameCorpus | None, n: int, seed: int, part: str = "all") -> np.ndarray:
    """``n`` games where a statistic would read ``n`` random ones: fresh random games of ``seed``
    without a corpus; else the file's first ``n`` games (``part`` "train": those not held out,
    "test": the held-out ones, "all": every game), cut to the width of random games."""
    if corpus is None:
        return game.random_games(n, seed=seed)
    if part not in ("all", "train", "test"):
        raise ValueError(f"part must be all, train or test, got {part!r}")
    games = corpus.games
    if part != "all":
        held = held_out(len(games))
        games = games[held if part == "test" else ~held]
        if not len(games):
            raise ValueError(f"{corpus.name} has {corpus.n_games} game(s): too few to hold one in {HELD_OUT_EVERY} out (it needs {HELD_OUT_EVERY})")
    games = games[:n, : moves_width(game)]
    if games.shape[1] < moves_width(game):  # the width random games have, so any batch code reads it alike
        games = np.pad(games, ((0, 0), (0, moves_width(game) - games.shape[1])), constant_values=-1)
    return np.ascontiguousarray(games)


SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "corpora"


def sample_files(game: Game) -> list[Path]:
    """The shipped sample files of ``game`` (``assets/corpora/<game>[size]_*.pgn|txt``; the size
    only where it is not 8)."""
    prefix = game.name if game.rows == 8 else f"{game.name}{game.rows}"
    return sorted(p for p in SAMPLES.glob("*") if p.is_file() and p.stem.split("_")[0] == prefix) if SAMPLES.is_dir() else []
