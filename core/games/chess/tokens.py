"""Chess move tokenizers: moves as token sequences, and which tokens are legal where.

``uci-squares`` is the layout of the published chess-GPT models (``shtoshni/gpt2-chess-uci``,
``AustinD/gpt2-chess-uci-hooked``): 77 tokens (pad, ``<s>``, ``</s>``, piece letters, the 64
squares in the tokenizer's own order, promotion letters). A game is ``<s>`` followed by, per move,
its from-square, its to-square and, for a promotion, the piece letter. The vocabulary is read from
``data/chess_vocab.json`` (the published order; a checkpoint's own tokenizer file can replace it).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import chess
import numpy as np

from core.games.chess.san import legal_sans

from core.games.chess import rules as C
from core.games.base import TokenBatch

VOCAB_FILE = Path(__file__).with_name("data") / "chess_vocab.json"
KIND_NAMES = ("from", "to", "promotion")
FROM, TO, PROMO = 0, 1, 2
_PROMO_LETTER = {chess.QUEEN: "q", chess.ROOK: "r", chess.BISHOP: "b", chess.KNIGHT: "n"}


@lru_cache(maxsize=None)
def published_vocab(layout: str) -> tuple[str, ...]:
    return tuple(json.loads(VOCAB_FILE.read_text())[layout])


class UciSquares:
    """The ``uci-squares`` token layout (optionally with a checkpoint's own vocabulary)."""

    name = "uci-squares"

    def __init__(self, vocab: tuple[str, ...] | None = None):
        vocab = tuple(vocab or published_vocab(self.name))
        self.vocab = vocab
        index = {t: i for i, t in enumerate(vocab)}
        missing = [t for t in ["<pad>", "<s>", *chess.SQUARE_NAMES, *_PROMO_LETTER.values()] if t not in index]
        if missing:
            raise ValueError(f"a uci-squares vocabulary needs <pad>, <s>, the 64 squares and q r b n; missing {missing[:5]}")
        self.pad, self.bos = index["<pad>"], index["<s>"]
        self.square_token = np.array([index[name] for name in chess.SQUARE_NAMES], dtype=np.int64)
        self.promo_token = np.zeros(7, dtype=np.int64)
        for piece, letter in _PROMO_LETTER.items():
            self.promo_token[piece] = index[letter]
        self.token_square = np.full(len(vocab), -1, dtype=np.int64)
        self.token_square[self.square_token] = np.arange(64)
        self.token_promo = np.zeros(len(vocab), dtype=np.int64)
        self.token_promo[self.promo_token[list(_PROMO_LETTER)]] = list(_PROMO_LETTER)

    @property
    def d_vocab(self) -> int:
        return len(self.vocab)

    # -- one game ---------------------------------------------------------------------------
    def move_tokens(self, move: int) -> list[int]:
        f, t, p = int(move) % 64, (int(move) // 64) % 64, int(move) // 4096
        out = [int(self.square_token[f]), int(self.square_token[t])]
        return out + [int(self.promo_token[p])] if p else out

    def encode(self, moves) -> np.ndarray:
        out = [self.bos]
        for m in moves:
            out += self.move_tokens(m)
        return np.array(out, dtype=np.int64)

    def decode(self, tokens) -> str:
        return " ".join(self.vocab[int(t)] for t in tokens)

    # -- batches ----------------------------------------------------------------------------
    def layout(self, games: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Token ids, token kind, move index and whether the token exists: each ``(n, length)``.

        Slots after a game's last token hold the from-token of the move that did not happen
        (move index = the game's length), so "what comes next" is defined at every position.
        """
        n, T = games.shape
        played = games >= 0
        f, t, p = C.move_parts(np.where(played, games, 0))
        n_tok = np.where(played, 2 + (p > 0), 0)  # tokens per move
        start = 1 + np.cumsum(n_tok, axis=1) - n_tok  # slot of each move's from-token
        tokens = np.full((n, length), self.pad, dtype=np.int64)
        kind = np.full((n, length), FROM, dtype=np.int8)
        move = np.broadcast_to(played.sum(axis=1, keepdims=True), (n, length)).astype(np.int32).copy()
        exists = np.zeros((n, length), dtype=bool)
        tokens[:, 0] = self.bos
        exists[:, 0] = True
        kind[:, 0] = -1
        move[:, 0] = -1
        g_idx = np.broadcast_to(np.arange(n)[:, None], (n, T))
        m_idx = np.broadcast_to(np.arange(T)[None, :], (n, T))
        for offset, k, values in ((0, FROM, self.square_token[f]), (1, TO, self.square_token[t]), (2, PROMO, self.promo_token[p])):
            slot = start + offset
            keep = played & (slot < length) & ((k != PROMO) | (p > 0))
            tokens[g_idx[keep], slot[keep]] = values[keep]
            kind[g_idx[keep], slot[keep]] = k
            move[g_idx[keep], slot[keep]] = m_idx[keep]
            exists[g_idx[keep], slot[keep]] = True
        return tokens, kind, move, exists

    def token_batch(self, games: np.ndarray, rep: C.Replay, n_ctx: int) -> TokenBatch:
        """Inputs (``<s>`` + moves, cut to ``n_ctx``) and the random player's next-token weights.

        Next from-square: weight = number of legal moves from it; next to-square (given the
        from-square played): number of legal moves between them; promotion: one per piece.
        """
        games = np.asarray(games)
        n, T = games.shape
        tokens, kind, move, exists = self.layout(games, n_ctx + 1)
        nxt_kind, nxt_move = kind[:, 1:], move[:, 1:]  # what position p predicts
        n_pos = n * (T + 1)
        actual = np.full(n_pos, -1, dtype=np.int64)  # the move played from each position
        actual.reshape(n, T + 1)[:, :T] = games
        af, at, ap = C.move_parts(np.maximum(actual, 0))
        pos, frm, promo = rep.group_pos, rep.group_from, rep.group_promo
        per_move = np.where(promo, len(C.PROMOTIONS), 1).astype(np.float32)
        # One group per (position, piece): plain assignment, no accumulation needed.
        count_from = np.zeros((n_pos, 64), dtype=np.float32)
        count_from[pos, frm] = np.bitwise_count(rep.group_to).astype(np.float32) * per_move
        played = (actual[pos] >= 0) & (frm == af[pos])
        count_to = np.zeros((n_pos, 64), dtype=np.float32)
        count_to[pos[played]] = C.unpack_bits(rep.group_to[played]) * per_move[played, None]
        promo_pos = (actual >= 0) & (ap > 0)

        weights = np.zeros((n * n_ctx, self.d_vocab), dtype=np.float32)
        row = (np.arange(n)[:, None] * (T + 1) + np.clip(nxt_move, 0, T)).reshape(-1)
        live = exists[:, :n_ctx].reshape(-1)  # a pad position predicts nothing
        flat_kind = nxt_kind.reshape(-1)
        for k, table in ((FROM, count_from), (TO, count_to)):
            idx = np.flatnonzero(live & (flat_kind == k))
            weights[idx[:, None], self.square_token[None, :]] = table[row[idx]]
        idx = np.flatnonzero(live & (flat_kind == PROMO) & promo_pos[row])
        weights[idx[:, None], self.promo_token[list(_PROMO_LETTER)][None, :]] = 1.0
        weights = weights.reshape(n, n_ctx, self.d_vocab)
        return TokenBatch(tokens[:, :n_ctx], weights, nxt_kind.astype(np.int8), nxt_move.astype(np.int32))


PGN_KIND_NAMES = ("san first", "san rest", "separator")
# The lens legality chart's finer split of PGN characters, by what the predicted character is.
CHAR_KIND_NAMES = ("piece letter", "file", "rank", "capture x", "check or mate", "castling", "promotion", "move number", "space")
_CHAR_KIND = {**{c: 0 for c in "NBRQK"}, **{c: 1 for c in "abcdefgh"}, **{c: 2 for c in "12345678"}, "x": 3, "+": 4, "#": 4, "O": 5, "-": 5, "=": 6}


class PgnChars:
    """Karvonen's ``pgn-chars`` layout: one token per character of ``;1.e4 e5 2.Nf3 ...``.

    A move is the characters of its SAN; the move number, the dot and the spaces between moves are
    separators the model must also write (each is the only legal character where it stands). The
    board is complete where a move's SAN ends.
    """

    name = "pgn-chars"

    def __init__(self, vocab: tuple[str, ...] | None = None):
        vocab = tuple(vocab or published_vocab(self.name))
        self.vocab = vocab
        self.index = {c: i for i, c in enumerate(vocab)}
        missing = [c for c in " ;.0123456789abcdefghxNBRQKO-=+#" if c not in self.index]
        if missing:
            raise ValueError(f"a pgn-chars vocabulary needs every PGN character; missing {missing}")
        self.bos = self.index[";"]
        self.pad = self.index[" "]  # the layout has no pad: spaces fill a batch after a game's end
        self.token_square = np.full(len(vocab), -1, dtype=np.int64)

    @property
    def d_vocab(self) -> int:
        return len(self.vocab)

    @property
    def candidates(self) -> np.ndarray:
        """Every character but the start-of-game ``;`` may be predicted somewhere."""
        out = np.ones(self.d_vocab, dtype=bool)
        out[self.bos] = False
        return out

    def char_kinds(self, batch: TokenBatch) -> np.ndarray:
        """``int (n, ctx)`` index into ``CHAR_KIND_NAMES`` of the character each position predicts
        (the one the game goes on with; where the context ends before it, the likeliest legal one
        under a random player). A separator's digits and dot are "move number"; the piece letter
        after ``=`` is "promotion"."""
        n, T = batch.tokens.shape
        nxt = np.empty((n, T), dtype=np.int64)
        nxt[:, :-1] = batch.tokens[:, 1:]
        nxt[:, -1] = batch.weights[:, -1].argmax(-1)
        in_text = np.zeros((n, T), dtype=bool)
        in_text[:, :-1] = batch.valid[:, 1:]  # position p + 1 holds a character of the game
        nxt = np.where(in_text, nxt, batch.weights.argmax(-1))
        table = np.full(self.d_vocab, 7, dtype=np.int64)
        for c, k in _CHAR_KIND.items():
            table[self.index[c]] = k
        kinds = table[nxt]
        separator = batch.kind == 2
        kinds = np.where(separator, np.where(nxt == self.index[" "], 8, 7), kinds)
        after_equals = batch.tokens == self.index["="]
        return np.where(after_equals & ~separator, 6, kinds)

    @staticmethod
    def separator(n_moves: int) -> str:
        """What is written before move ``n_moves`` (0-based): ``1.`` / `` `` / `` 2.``."""
        if n_moves == 0:
            return "1."
        return f" {n_moves // 2 + 1}." if n_moves % 2 == 0 else " "

    def encode_text(self, text: str) -> np.ndarray:
        return np.array([self.index[c] for c in text], dtype=np.int64)

    def game_text(self, moves, limit: int | None = None) -> str:
        """``records(moves, limit)``'s text alone, kept for the latest games: a page reads the
        same game's text many times in one rerun (fitting it to the context, the model input,
        each row of an edit batch), and each ``records`` replays the game with every legal SAN at
        every ply."""
        return self._game_text(tuple(int(m) for m in moves), limit)

    @lru_cache(maxsize=256)  # noqa: B019 -- tokenizers live as long as the process
    def _game_text(self, moves: tuple[int, ...], limit: int | None) -> str:
        """``records``'s text without its per-character weights: only the played move's SAN and
        whether any move is legal, at each ply (~5x faster; ``tests/test_chess_pgn.py`` checks
        it equals ``records``'s text)."""
        board = chess.Board()
        text = ";"
        n_moves = len(moves)
        for i in range(n_moves + 1):
            if limit is not None and len(text) > limit:
                break
            if i > 0 and game_over(board, any(board.generate_legal_moves()), at_end=i == n_moves):
                break
            text += self.separator(i)
            if i == n_moves:
                break
            move = C.decode_move(moves[i])
            if not board.is_legal(move):
                raise ValueError(f"illegal move {move.uci()} in {board.fen()}")
            text += board.san(move)
            board.push(move)
        return text

    def records(self, moves: list[int], limit: int | None = None) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
        """The game's text and, per character position p (predicting character p + 1): the random
        player's weights over characters, the kind and the move of character p + 1.

        ``limit``: stop once the text is longer than this many characters (a model's context
        reads at most ``n_ctx`` of them), so long games cost only what the model sees.
        """
        board = chess.Board()
        text, kinds, move_of, rows = ";", [], [], []
        index, d_vocab = self.index, self.d_vocab
        n_moves = len(moves)
        longer: dict[int, float] = {}
        for i in range(n_moves + 1):
            if limit is not None and len(text) > limit:
                break
            pairs = legal_sans(board)
            sans = [san for _, san in pairs]
            if i > 0 and game_over(board, bool(sans), at_end=i == n_moves):
                break
            for j, c in enumerate(self.separator(i)):
                rows.append(dict(longer) if j == 0 and i > 0 else {})
                rows[-1][index[c]] = rows[-1].get(index[c], 0.0) + 1.0
                kinds.append(2)
                move_of.append(i)
                text += c
            if i == n_moves:  # the position after the text predicts the next move's first character
                first: dict[int, float] = {}
                for san in sans:
                    first[index[san[0]]] = first.get(index[san[0]], 0.0) + 1.0
                rows.append(first)
                kinds.append(0)
                move_of.append(i)
                break
            move = C.decode_move(moves[i])
            san = _played_san(pairs, move, board)
            candidates = sans
            for j, c in enumerate(san):
                row: dict[int, float] = {}
                nxt = []
                for s in candidates:
                    if len(s) > j:
                        k = index[s[j]]
                        row[k] = row.get(k, 0.0) + 1.0
                        if s[j] == c:
                            nxt.append(s)
                rows.append(row)
                kinds.append(0 if j == 0 else 1)
                move_of.append(i)
                text += c
                candidates = nxt
            # Where the SAN ends, a longer one may go on ("O-O" is the start of "O-O-O"): the
            # space that ends the move shares its position with that one's next character.
            longer = {}
            for s_ in candidates:
                if len(s_) > len(san):
                    longer[index[s_[len(san)]]] = longer.get(index[s_[len(san)]], 0.0) + 1.0
            board.push(move)
        # ``rows[k]`` is for character k + 1; the first character (';') is never predicted.
        weights = np.zeros((len(rows), d_vocab), dtype=np.float32)
        for k, row in enumerate(rows):
            for v, w in row.items():
                weights[k, v] = w
        return text, weights, np.array(kinds, dtype=np.int8), np.array(move_of, dtype=np.int32)

    def text(self, sans: list[str]) -> str:
        return ";" + "".join(self.separator(i) + san for i, san in enumerate(sans))

    def token_batch(self, games: np.ndarray, n_ctx: int) -> TokenBatch:
        n = len(games)
        tokens = np.full((n, n_ctx), self.pad, dtype=np.int64)
        weights = np.zeros((n, n_ctx, self.d_vocab), dtype=np.float32)
        kind = np.zeros((n, n_ctx), dtype=np.int8)
        move = np.zeros((n, n_ctx), dtype=np.int32)
        for g in range(n):
            moves = [int(m) for m in games[g] if m >= 0]
            text, w, k, m = self.records(moves, limit=n_ctx)
            ids = self.encode_text(text)[:n_ctx]
            tokens[g, : len(ids)] = ids
            # Position p predicts character p + 1; the characters after the text (the next
            # move's separator) are predicted too while the game goes on.
            upto = min(len(w), n_ctx)
            weights[g, :upto], kind[g, :upto], move[g, :upto] = w[:upto], k[:upto], m[:upto]
            weights[g, len(ids) :] = 0.0  # positions past the text read nothing
        return TokenBatch(tokens, weights, kind, move)


def game_over(board: chess.Board, has_moves: bool, at_end: bool) -> bool:
    """Whether the game has ended at ``board`` (mate, stalemate, or a draw the engine applies).
    A threefold repetition is looked for only at the end of the moves given, or after eight
    reversible plies (it needs at least that many): the scan of the move stack is costly."""
    if not has_moves or board.halfmove_clock >= 100 or board.is_insufficient_material():
        return True
    return (at_end or board.halfmove_clock >= 8) and board.is_repetition(3)


def _played_san(pairs: list[tuple[chess.Move, str]], move: chess.Move, board: chess.Board) -> str:
    """The SAN of ``move`` among the position's ``(move, san)`` pairs."""
    for m, san in pairs:
        if m == move:
            return san
    raise ValueError(f"illegal move {move.uci()} in {board.fen()}")
