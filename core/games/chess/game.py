"""Chess as a BoardLens game plug-in: python-chess rules (``core.games.chess.rules``) + a tokenizer."""

from __future__ import annotations

import chess
import numpy as np

from core.games.chess import rules as C
from core.games.chess.san import legal_sans
from core.games.base import Game, GameState, IllegalMoveError, TokenBatch
from core.games.chess.pgn_file import read_pgn_file
from core.games.chess.state import FACTS, MAX_MOVES, PIECE_CLASSES, PIECE_NAMES, RELATIVE_CLASSES, ChessState
from core.games.chess.tokens import CHAR_KIND_NAMES, KIND_NAMES, PGN_KIND_NAMES, PgnChars, UciSquares, game_over

class ChessGame(Game):
    """Chess with one tokenizer (``uci-squares`` today)."""

    name = "chess"
    rows = cols = 8
    square_moves = False
    token_kinds = KIND_NAMES
    PIECE_NAMES = PIECE_NAMES
    board_style = {"pieces": "chess", "rank1_bottom": True, "piece_names": PIECE_NAMES}
    notations: dict[str, str] = {}
    move_placeholder = "e2e4 e7e5  ·  e4 e5 Nf3  ·  1. e4 e5 2. Nf3 Nc6 …"
    move_help = "UCI (e2e4, e7e8q), SAN (Nf3, O-O, exd5) or a whole PGN move list; move numbers, comments and the result are skipped."

    def __init__(self, tokenizer: str = "uci-squares", n_ctx: int = 0, vocab: tuple[str, ...] | None = None):
        if tokenizer == "uci-squares":
            self.tokenizer = UciSquares(vocab)
            self.title = "Chess (UCI square tokens)"
            self.n_ctx = int(n_ctx or 256)
            self.max_moves = (self.n_ctx + 1) // 2  # enough to fill the context: a move is >= 2 tokens
        elif tokenizer == "pgn-chars":
            self.tokenizer = PgnChars(vocab)
            self.title = "Chess (PGN characters)"
            self.token_kinds = PGN_KIND_NAMES
            self.n_ctx = int(n_ctx or 1023)
            self.max_moves = (self.n_ctx + 1) // 3  # a move is >= 3 characters with its separator
        else:
            raise ValueError(f"unknown chess tokenizer {tokenizer!r} (known: uci-squares, pgn-chars)")
        self.key = f"chess-{tokenizer}"
        self.d_vocab = self.tokenizer.d_vocab
        self.pad_token = self.tokenizer.pad

    # -- text --------------------------------------------------------------------------------
    def parse_moves(self, text: str, prefix=(), notation: str = "auto") -> list[int]:
        return C.parse_moves(text, tuple(prefix))

    def format_moves(self, moves, sep: str = " ") -> str:
        return C.format_pgn(list(moves)) if sep == " " else sep.join(C.uci(m) for m in moves)

    def url_moves(self, moves) -> str:
        return "".join(C.uci(m) for m in moves)

    def read_game_file(self, text: str, limit: int = 10_000, progress=None):
        """A PGN file: ``(games, skipped, headers)`` (``pgn_file.read_pgn_file``)."""
        return read_pgn_file(text, limit, progress)

    def move_label(self, move: int) -> str:
        return C.uci(move)

    def move_text(self, moves, move: int) -> str:
        return self.san(moves, move)

    def san(self, moves, move: int) -> str:
        """A move in SAN, in the position after ``moves``."""
        return C.board_after(tuple(moves)).san(C.decode_move(move))

    def piece_label(self, state: GameState, square: int) -> str:
        """The piece on ``square`` in words ("white knight")."""
        return self.PIECE_NAMES.get(int(state.board.reshape(-1)[square]), "empty")

    def square_label(self, square: int) -> str:
        return C.square_to_label(square)

    # -- positions ---------------------------------------------------------------------------
    def state(self, moves) -> ChessState:
        moves = tuple(int(m) for m in moves)
        if len(moves) > MAX_MOVES:
            raise IllegalMoveError(f"a game here has at most {MAX_MOVES} moves, got {len(moves)}")
        for i, m in enumerate(moves):
            try:
                C.decode_move(m)
            except ValueError as exc:
                raise IllegalMoveError(f"move {i + 1}: {exc}") from exc
        try:
            rep = C.replay(np.array([moves], dtype=np.int64).reshape(1, len(moves)))
        except C.MoveError as exc:
            raise IllegalMoveError(f"move {exc.move + 1}: {str(exc).split(': ', 1)[1]}") from exc
        except ValueError as exc:
            raise IllegalMoveError(str(exc)) from exc
        legal = tuple(rep.legal_lists(0)[len(moves)])
        term = C.TERMINATIONS[int(rep.termination[0])]
        board = rep.boards[0, -1] if moves else C._unpack_boards(np.array([C._bitboards(chess.Board())], dtype=np.uint64))[0]
        from_sq = np.zeros(64, dtype=bool)
        from_sq[[m % 64 for m in legal]] = True
        to_move = 0 if term else (C.WHITE if len(moves) % 2 == 0 else C.BLACK)
        in_check = bool(rep.check[0, -1]) if moves else False
        return ChessState(moves, board, to_move, legal, from_sq, term, in_check)

    def explain_illegal(self, state: GameState, move: int) -> str:
        if state.is_over:
            return f"{self.move_label(move)}: the game is over"
        return C._why_illegal(C.board_after(state.moves), int(move))

    def moves_from(self, state: GameState, square: int) -> list[int]:
        return [m for m in state.legal_moves if m % 64 == square]

    def move_squares(self, move: int) -> tuple[int, int]:
        return int(move) % 64, (int(move) // 64) % 64

    # -- probes ------------------------------------------------------------------------------
    probe_targets = {
        "piece": PIECE_CLASSES,
        "piece_relative": RELATIVE_CLASSES,
        "legal_destination": ("not reachable", "reachable"),
    }
    probe_help = {
        "piece": "each square's piece: empty or one of the 6 white and 6 black pieces (13 classes)",
        "piece_relative": "each square's piece relative to the player who just moved: empty, 6 mine, 6 theirs",
        "legal_destination": "whether some legal move of the side to move lands on each square",
    }
    board_target = "piece"  # the target whose classes are a whole board (drawn as pieces)

    def probe_classes(self, rep: C.Replay, target: str) -> np.ndarray:
        """``int64 (n, T, 64)``: class per square after each move (see ``probe_targets``)."""
        n, T = rep.mover.shape
        boards = rep.boards.reshape(n, T, 64).astype(np.int64)
        if target == "piece":
            return boards + 6
        if target == "piece_relative":
            rel = boards * rep.mover[:, :, None]  # > 0: the mover's piece
            return np.where(rel == 0, 0, np.where(rel > 0, rel, 6 - rel)).astype(np.int64)
        if target == "legal_destination":
            out = np.zeros((n * (T + 1), 64), dtype=np.int64)
            g, t = rep.group_targets()
            out[rep.group_pos[g], t] = 1
            return out.reshape(n, T + 1, 64)[:, 1:]  # the position after move t
        raise ValueError(f"unknown chess probe target {target!r}; choose from {', '.join(self.probe_targets)}")

    board_property_classes = 13

    def board_properties(self, rep: C.Replay, valid: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Karvonen et al.'s chess board-state properties at the valid positions: the piece on
        every square (13 x 64 = 832, class-major), every legal destination square, check, the
        side to move's castling rights (kingside, queenside, either), a legal en passant capture,
        and a pinned piece (either side's)."""
        from core.games.chess.properties import en_passant_legal, pinned_pieces, side_to_move_castling

        piece = self.probe_classes(rep, "piece")[valid]  # (N, 64)
        board = (piece[:, None, :] == np.arange(13)[None, :, None]).reshape(len(piece), 13 * 64)
        dest = self.probe_classes(rep, "legal_destination")[valid].astype(bool)
        castle = side_to_move_castling(rep)[valid]
        facts = np.stack([rep.check[valid], castle[:, 0], castle[:, 1], castle.any(1), en_passant_legal(rep)[valid],
                          pinned_pieces(piece - 6).any(1)], axis=1)
        names = [f"{PIECE_CLASSES[c]} {chess.square_name(s)}" for c in range(13) for s in range(64)]
        names += [f"legal destination {chess.square_name(s)}" for s in range(64)] + list(FACTS)
        return np.concatenate([board, dest, facts], axis=1), names

    def board_property_sets(self) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        """The paper's property sets, by name: ``(property indices, board mask or None)``; a board
        set's mask ``(13, 64)`` marks the (class, square) entries it scores."""
        n_board = 13 * 64
        empty = PIECE_CLASSES.index("empty")
        blanks = np.ones((13, 64), dtype=bool)
        blanks[empty] = False
        initial = blanks.copy()
        start = chess.Board()
        for square in range(64):
            piece = start.piece_at(square)
            initial[(piece.piece_type * (1 if piece.color else -1) + 6) if piece else empty, square] = False
        facts = {name: n_board + 64 + i for i, name in enumerate(FACTS)}
        return {
            "board (piece per square)": (np.arange(n_board), np.ones((13, 64), dtype=bool)),
            "board, blanks masked": (np.nonzero(blanks.reshape(-1))[0], blanks),
            "board, blanks and initial position masked": (np.nonzero(initial.reshape(-1))[0], initial),
            "legal destinations": (np.arange(n_board, n_board + 64), None),
            "check": (np.array([facts["side to move in check"]]), None),
            "castling rights (kingside, queenside, either)": (np.array([facts[f] for f in FACTS[1:4]]), None),
            "legal en passant": (np.array([facts["legal en passant"]]), None),
            "pinned piece": (np.array([facts["a pinned piece (either side)"]]), None),
        }

    def move_positions(self, games: np.ndarray) -> np.ndarray:
        """``int (n, T)``: the token position where move t's board is complete (its last token),
        -1 where that token is past the context."""
        games = np.asarray(games)
        if not self.square_tokens:
            return self._pgn_move_ends(games)
        _, _, p = C.move_parts(np.where(games >= 0, games, 0))
        n_tok = np.where(games >= 0, 2 + (p > 0), 0)
        last = np.cumsum(n_tok, axis=1)  # slot of the move's last token (slot 0 is <s>)
        return np.where((games >= 0) & (last < self.n_ctx), last, -1)

    def _pgn_move_ends(self, games: np.ndarray) -> np.ndarray:
        """``pgn-chars``: where the board after move t is complete, as Karvonen's probes read it:
        the last character of the separator that follows the move (the space before Black's
        move, the ``.`` before White's: ``;1.e4 e5 2.Nf3`` reads e4's board at the space after
        it and e5's at the ``.`` of ``2.``); -1 past the context, or after a game's last move
        (no separator follows it)."""
        out = np.full(games.shape, -1, dtype=np.int64)
        sep = self.tokenizer.separator
        for g, row in enumerate(games):
            moves = [int(m) for m in row if m >= 0]
            board = chess.Board()
            offset = 1  # the leading ';'
            for t, code in enumerate(moves):
                move = C.decode_move(code)
                offset += len(sep(t)) + len(board.san(move))
                board.push(move)
                end = offset + len(sep(t + 1)) - 1
                if end >= self.n_ctx:
                    break
                if t + 1 < len(moves) or not game_over(board, any(board.generate_legal_moves()), at_end=True):
                    out[g, t] = end
        return out

    def probe_board(self, classes: np.ndarray, target: str, mover: int) -> np.ndarray | None:
        """A board (signed piece types) from per-square classes of a piece target; None otherwise."""
        if target == "piece":
            return (classes - 6).astype(np.int8)
        if target == "piece_relative":
            kind = np.where(classes > 6, classes - 6, classes)
            sign = np.where(classes > 6, -mover, mover)
            return np.where(classes == 0, 0, kind * sign).astype(np.int8)
        return None

    # -- board edits (probe interventions) ------------------------------------------------------
    def edit_position(self, moves, square: int, value: int) -> tuple[np.ndarray, np.ndarray]:
        """The position after ``moves`` with ``square`` set to ``value`` (a signed piece type, 0 =
        empty): ``(board int8 (8, 8), legal bool (64,))``, the squares a legal move of the side to
        move starts on. ``ValueError`` when the edit is not a chess position: a king added or
        removed, a pawn on the first or last rank, the side that just moved left in check, or no
        legal move at all (the model's next token would have no right answer)."""
        board = self.edited_board(moves, square, value)
        legal = np.zeros(64, dtype=bool)
        legal[[m.from_square for m in board.legal_moves]] = True
        return C._unpack_boards(np.array([C._bitboards(board)], dtype=np.uint64))[0], legal

    def edited_board(self, moves, square: int, value: int) -> chess.Board:
        """The python-chess position after ``moves`` with ``square`` set to ``value`` (see
        ``edit_position`` for what is refused)."""
        board = C.board_after(tuple(moves))
        if board.is_game_over(claim_draw=False) or C._claimed(board):
            raise ValueError("the game is over: there is no next move to predict")
        if not 0 <= square < 64 or not -6 <= value <= 6:
            raise ValueError(f"square must be in 0..63 and the piece in -6..6, got {square}, {value}")
        old = board.piece_at(square)
        if (old is not None and old.piece_type == chess.KING) or abs(value) == chess.KING:
            raise ValueError("kings cannot be added or removed: the position would not be chess")
        if abs(value) == chess.PAWN and chess.square_rank(square) in (0, 7):
            raise ValueError("a pawn cannot stand on the first or last rank")
        board.set_piece_at(square, chess.Piece(abs(value), value > 0) if value else None)
        board.castling_rights = board.clean_castling_rights()
        if board.was_into_check():
            raise ValueError("after this edit the side that just moved would be in check")
        if not any(board.generate_legal_moves()):
            raise ValueError("after this edit the side to move has no legal move")
        return board

    def legal_move_texts(self, moves, edit: tuple[int, int] | None = None) -> set[str]:
        """The legal moves after ``moves`` as the model writes them (SAN), on the real board or
        with ``edit = (square, value)`` applied: what a move the model writes is judged against."""
        board = self.edited_board(moves, *edit) if edit is not None else C.board_after(tuple(moves))
        return {san for _, san in legal_sans(board)}

    def accepts_move_text(self, moves, text: str) -> bool:
        """Whether python-chess reads ``text`` as a legal move after ``moves`` (``parse_san``: a
        missing or extra check sign and an over-specified origin are accepted, as ``push_san``
        accepts them when a published evaluation plays the model's moves); a null move is not."""
        board = C.board_after(tuple(moves))
        try:
            move = board.parse_san(text)
        except ValueError:
            return False
        return bool(move) and board.is_legal(move)

    @property
    def move_end_token(self) -> int | None:
        """The token that ends every move (PGN: the space), None when moves have fixed lengths."""
        return None if self.square_tokens else self.tokenizer.index[" "]

    def edit_examples(self, n: int, seed: int = 0) -> list[tuple[tuple[int, ...], int, int, np.ndarray]]:
        """``n`` positions from random games, each with one piece of the side to move removed
        (Karvonen's intervention): ``(moves, square, old value, legal squares after the edit)``.
        Only pieces with a legal move are removed, so the edit always changes the legal set."""
        rng = np.random.default_rng(seed)
        games = self.random_games(2 * n + 10, seed=seed)
        out = []
        for row in games:
            if len(out) == n:
                break
            moves = tuple(int(m) for m in row if m >= 0)
            moves = self.fit_moves(moves)
            if len(moves) < 8:
                continue
            moves = moves[: int(rng.integers(6, len(moves) - 1))]
            board = C.board_after(moves)
            if board.is_game_over(claim_draw=False) or C._claimed(board):
                continue
            movable = sorted({m.from_square for m in board.legal_moves if board.piece_type_at(m.from_square) != chess.KING})
            for square in rng.permutation(movable):
                try:
                    _, legal = self.edit_position(moves, int(square), 0)
                except ValueError:
                    continue
                piece = board.piece_at(int(square))
                out.append((moves, int(square), piece.piece_type * (1 if piece.color else -1), legal))
                break
        return out

    # -- batches -----------------------------------------------------------------------------
    def random_games(self, n: int, seed: int = 0) -> np.ndarray:
        return C.random_games(n, self.max_moves, seed)

    def replay(self, games: np.ndarray) -> C.Replay:
        return C.replay(games)

    @property
    def square_tokens(self) -> bool:
        """Whether the first token of a move names its from-square (``uci-squares``)."""
        return isinstance(self.tokenizer, UciSquares)

    def token_batch(self, games: np.ndarray) -> TokenBatch:
        games = np.asarray(games)[:, : self.max_moves]
        if not self.square_tokens:
            return self.tokenizer.token_batch(games, self.n_ctx)
        return self.tokenizer.token_batch(games, C.replay(games), self.n_ctx)

    def random_token_batch(self, n: int, seed: int) -> TokenBatch:
        """Random games and their token batch from one pass of the engine (the trainer's path)."""
        games, rep = C.random_games_with_replay(n, self.max_moves, seed)
        if not self.square_tokens:
            return self.tokenizer.token_batch(games, self.n_ctx)
        return self.tokenizer.token_batch(games, rep, self.n_ctx)

    def games_from_uniforms(self, uniforms: np.ndarray) -> np.ndarray:
        return C.games_from_uniforms(uniforms)[0]

    def token_batch_from_uniforms(self, uniforms: np.ndarray) -> TokenBatch:
        games, rep = C.games_from_uniforms(uniforms)
        if not self.square_tokens:
            return self.tokenizer.token_batch(games, self.n_ctx)
        return self.tokenizer.token_batch(games, rep, self.n_ctx)

    def batch_tokens(self, games: np.ndarray, length: int = 0) -> np.ndarray:
        length = length or self.n_ctx
        if self.square_tokens:
            return self.tokenizer.layout(np.asarray(games), length)[0]
        out = np.full((len(games), length), self.pad_token, dtype=np.int64)
        for g, row in enumerate(np.asarray(games)):
            ids = self.game_tokens([int(m) for m in row if m >= 0], length)
            out[g, : len(ids)] = ids
        return out

    def batch_token_mask(self, games: np.ndarray, length: int = 0) -> np.ndarray:
        if self.square_tokens:
            return super().batch_token_mask(games, length)
        # PGN pads with spaces, which are also real characters: the mask comes from each text's length.
        length = length or self.n_ctx
        sizes = np.array([len(self.game_tokens([int(m) for m in row if m >= 0], length)) for row in np.asarray(games)], dtype=np.int64)
        return np.arange(length)[None, :] < sizes[:, None]

    def game_tokens(self, moves, length: int = 0) -> np.ndarray:
        """The model input for one game: for ``pgn-chars`` the text up to where the next move's
        characters start (its separator included) while the game goes on."""
        if self.square_tokens:
            return self.tokenizer.encode(moves)[: length or self.n_ctx]
        text = self.tokenizer.game_text(moves, limit=length or self.n_ctx)
        return self.tokenizer.encode_text(text)[: length or self.n_ctx]

    def token_square(self) -> np.ndarray:
        return self.tokenizer.token_square

    def fit_moves(self, moves) -> tuple[int, ...]:
        moves = tuple(int(m) for m in moves)
        if self.square_tokens:
            lengths = np.cumsum([len(self.tokenizer.move_tokens(m)) for m in moves]) + 1  # + <s>
            return moves[: int((lengths <= self.n_ctx).sum())]
        if len(self.tokenizer.game_text(moves, limit=self.n_ctx)) <= self.n_ctx:
            return moves
        # Before the last move the game goes on, so the text after k moves ends with move k's
        # separator: ``;`` + k separators and SANs + one more separator.
        sep = self.tokenizer.separator
        length = 1
        for k, san in enumerate(C.san_moves(moves[:-1])):
            if length + len(sep(k)) + len(san) + len(sep(k + 1)) > self.n_ctx:
                return moves[:k]
            length += len(sep(k)) + len(san)
        return moves[:-1]

    def token_labels(self, moves) -> list[str]:
        """Per input token: the start token, then each move's tokens marked with its number
        (``3.e2`` from-square, ``3:e4`` to-square, ``3=q`` promotion; characters for pgn-chars)."""
        tokens = self.game_tokens(moves)
        if not self.square_tokens:
            return ["␣" if self.tokenizer.vocab[int(t)] == " " else self.tokenizer.vocab[int(t)] for t in tokens]
        out = ["⟨s⟩"]  # the start token <s>, in brackets no chart reads as an HTML tag
        for i, m in enumerate(moves):
            f, t, p = C.move_parts(int(m))
            out += [f"{i + 1}.{C.square_to_label(int(f))}", f"{i + 1}:{C.square_to_label(int(t))}"] + ([f"{i + 1}={'  nbrq'[int(p)]}"] if p else [])
        return out[: len(tokens)]

    def move_tokens(self, move: int, moves=()) -> list[int]:
        """The tokens of ``move`` (for ``pgn-chars``: its SAN after ``moves``)."""
        if self.square_tokens:
            return self.tokenizer.move_tokens(move)
        return list(self.tokenizer.encode_text(self.san(moves, move)))

    @property
    def vocab(self) -> tuple[str, ...]:
        return tuple(self.tokenizer.vocab)

    @property
    def read_positions(self) -> str:
        if self.square_tokens:
            return "the last token of each move"
        return "the characters where a board is complete: the '.' before White's move and the space before Black's"

    def token_context(self, moves, move_index: int, before: int = 24, after: int = 14) -> tuple[str, str, str] | None:
        if self.square_tokens:
            return None
        moves = [int(m) for m in moves if m >= 0]
        at = int(self.move_positions(np.array([moves], dtype=np.int64))[0, move_index]) if 0 <= move_index < len(moves) else -1
        if at < 0:
            return None
        text = self.tokenizer.game_text(moves, limit=min(self.n_ctx, at + after + 1))
        return text[max(0, at - before) : at], text[at], text[at + 1 : at + 1 + after]

    def candidate_tokens(self) -> np.ndarray:
        if self.square_tokens:
            return super().candidate_tokens()
        return self.tokenizer.candidates

    def legality_kinds(self, batch: TokenBatch) -> tuple[tuple[str, ...], np.ndarray]:
        if self.square_tokens:
            return super().legality_kinds(batch)
        return CHAR_KIND_NAMES, self.tokenizer.char_kinds(batch)

    def move_token_counts(self, moves) -> np.ndarray:
        if self.square_tokens:
            return super().move_token_counts(moves)
        return np.array([len(san) for san in C.san_moves(list(moves))], dtype=np.int64)

    def continuation_rows(self, state: GameState) -> tuple[np.ndarray, list[tuple[int, list[int]]]]:
        """The prefix the next move continues and, per legal move, its tokens."""
        prefix = self.game_tokens(state.moves)
        if self.square_tokens:
            return prefix, [(m, self.tokenizer.move_tokens(m)) for m in state.legal_moves]
        # A move's characters and the space that ends every move: "O-O" is a prefix of "O-O-O",
        # and only the space says which was written (or that no "+" follows).
        board = C.board_after(state.moves)
        sans = dict(legal_sans(board))
        return prefix, [(m, list(self.tokenizer.encode_text(sans[C.decode_move(m)] + " "))) for m in state.legal_moves]
