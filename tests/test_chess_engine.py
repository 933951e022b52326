"""The batched chess records against python-chess's own board, one position at a time."""

from __future__ import annotations

import chess
import numpy as np
import pytest

from core.games.chess import rules as C
from core.games.chess.lockstep import run_lockstep


def signed_board(board: chess.Board) -> np.ndarray:
    out = np.zeros(64, dtype=np.int8)
    for square, piece in board.piece_map().items():
        out[square] = piece.piece_type * (1 if piece.color else -1)
    return out.reshape(8, 8)


def reference_end(board: chess.Board) -> str:
    """Why python-chess says the game is over ('' if it goes on), in the engine's order."""
    if board.is_checkmate():
        return "checkmate"
    if board.is_stalemate():
        return "stalemate"
    if board.is_insufficient_material():
        return "insufficient material"
    if board.is_fifty_moves():
        return "fifty-move rule"
    if board.is_repetition(3):
        return "threefold repetition"
    return ""


def check_against_python_chess(games: np.ndarray, rep: C.Replay) -> dict[str, int]:
    """Replay every game with python-chess and compare every recorded position; count features."""
    seen = {"castling": 0, "en passant": 0, "promotion": 0, **{t: 0 for t in C.TERMINATIONS[1:]}}
    for g in range(len(games)):
        board = chess.Board()
        legal_lists = rep.legal_lists(g)
        n = int(rep.lengths[g])
        assert {chess.Move.from_uci(C.uci(m)) for m in legal_lists[0]} == set(board.legal_moves)
        for t in range(n):
            move = C.decode_move(int(games[g, t]))
            assert move in board.legal_moves, (g, t)
            seen["castling"] += board.is_castling(move)
            seen["en passant"] += board.is_en_passant(move)
            seen["promotion"] += move.promotion is not None
            assert rep.mover[g, t] == (C.WHITE if board.turn else C.BLACK)
            board.push(move)
            assert np.array_equal(rep.boards[g, t], signed_board(board)), (g, t)
            assert rep.check[g, t] == board.is_check()
            assert rep.halfmove_clock[g, t] == board.halfmove_clock
            end = reference_end(board)
            if t < n - 1:
                assert end == "", (g, t, end)  # the engine stopped no later than python-chess says
            expected_next = 0 if end else (C.WHITE if board.turn else C.BLACK)
            assert rep.next_player[g, t] == expected_next, (g, t)
            legal = {chess.Move.from_uci(C.uci(m)) for m in legal_lists[t + 1]}
            assert legal == (set() if end else set(board.legal_moves)), (g, t)
        end = reference_end(board)
        assert C.TERMINATIONS[rep.termination[g]] == end, (g, end)
        if end:
            seen[end] += 1
            assert (games[g, n:] == -1).all()
        else:
            assert n == games.shape[1]  # a game stops early only when it is over
    return seen


def test_short_random_games_match_python_chess_position_by_position():
    games, rep = C.random_games_with_replay(2000, 12, seed=11)
    seen = check_against_python_chess(games, rep)
    assert seen["castling"] > 0 and seen["checkmate"] >= 0


def test_full_random_games_reach_every_kind_of_end_like_python_chess():
    games, rep = C.random_games_with_replay(150, 400, seed=5)
    seen = check_against_python_chess(games, rep)
    for feature in ("castling", "en passant", "promotion", "checkmate", "insufficient material", "fifty-move rule", "threefold repetition"):
        assert seen[feature] > 0, (feature, seen)


def test_replay_matches_the_records_made_while_playing():
    games, rep = C.random_games_with_replay(50, 120, seed=2)
    again = C.replay(games)
    for field in ("boards", "mover", "next_player", "lengths", "termination", "check", "legal_pos", "legal_moves"):
        assert np.array_equal(getattr(rep, field), getattr(again, field)), field


def test_same_seed_same_games_in_any_batch_size():
    assert np.array_equal(C.random_games(7, 40, seed=3)[:3], C.random_games(3, 40, seed=3))


@pytest.mark.parametrize(
    "pgn,end",
    [
        ("f3 e5 g4 Qh4#", "checkmate"),
        ("e3 a5 Qh5 Ra6 Qxa5 h5 h4 Rah6 Qxc7 f6 Qxd7+ Kf7 Qxb7 Qd3 Qxb8 Qh7 Qxc8 Kg6 Qe6", "stalemate"),
        ("Nf3 Nf6 Ng1 Ng8 Nf3 Nf6 Ng1 Ng8", "threefold repetition"),
    ],
)
def test_known_game_ends(pgn, end):
    moves = C.parse_moves(pgn)
    rep = C.replay(np.array([moves]))
    assert C.TERMINATIONS[rep.termination[0]] == end
    assert rep.next_player[0, -1] == 0 and rep.legal_lists(0)[-1] == []
    with pytest.raises(C.MoveError, match="follows the end"):
        C.replay(np.array([moves + [C.encode_move(chess.Move.from_uci("a2a3"))]]))


def test_parse_uci_san_pgn_and_errors():
    assert C.parse_moves("e2e4 e7e5 g1f3") == C.parse_moves("e2e4e7e5g1f3") == C.parse_moves("1. e4 e5 2. Nf3") == C.parse_moves("e4, e5, Nf3 1-0")
    assert C.parse_moves("1. e4 {best by test} e5 (1... c5) 2. Nf3 $1 *") == C.parse_moves("e4 e5 Nf3")
    with pytest.raises(ValueError, match="move 2 .*e7e4"):
        C.parse_moves("e2e4 e7e4")
    with pytest.raises(ValueError, match="not a move"):
        C.parse_moves("e4 zz!")
    with pytest.raises(ValueError, match="must promote"):
        C.parse_moves("b7a8", tuple(C.parse_moves("a4 b5 axb5 a6 bxa6 Bb7 axb7 Nc6")))
    promo = C.parse_moves("a4 b5 axb5 a6 bxa6 Bb7 axb7 Nc6 bxa8=N")
    assert C.uci(promo[-1]) == "b7a8n" and C.format_pgn(promo).endswith("5. bxa8=N")
    assert C.parse_moves("O-O", tuple(C.parse_moves("e4 e5 Nf3 Nc6 Bc4 Bc5"))) == [C.encode_move(chess.Move.from_uci("e1g1"))]


def test_move_codes_round_trip():
    for uci in ("e2e4", "a7a8q", "h2h1n", "e1g1"):
        move = chess.Move.from_uci(uci)
        assert C.decode_move(C.encode_move(move)) == move
    with pytest.raises(ValueError):
        C.decode_move(4096 * 6 + 1)


RECORD_FIELDS = ("boards", "mover", "next_player", "lengths", "termination", "check", "halfmove_clock", "group_pos", "group_from", "group_to", "group_promo")


def engines():
    """Every engine that can play random games: (name, run(uniforms) -> (games, Replay))."""
    out = [("lockstep", lambda u: run_lockstep(len(u), u.shape[1], u)), ("python-chess", lambda u: C._run_python_chess(len(u), u.shape[1], None, u))]
    if C.ENGINE == "cozy-chess":
        from core.games.chess.fast import run_cozy

        out.append(("cozy-chess", lambda u: run_cozy(len(u), u.shape[1], None, u)))
    return out


def test_every_engine_records_the_same_games():
    uniforms = np.random.default_rng(8).random((120, 300))
    (ref_name, ref_run), *others = engines()
    ref_games, ref = ref_run(uniforms)
    assert len(others) >= 1
    for name, run in others:
        games, rep = run(uniforms)
        assert np.array_equal(games, ref_games), (name, ref_name)
        for field in RECORD_FIELDS:
            assert np.array_equal(getattr(rep, field), getattr(ref, field)), (name, field)


def test_large_batches_play_in_lockstep_and_small_ones_position_by_position():
    """Both paths of ``rules._run`` are the ones the tests above check, and agree with each other."""
    big = C.LOCKSTEP_MIN_GAMES
    few, many = C.random_games(5, 60, seed=4), C.random_games(big, 60, seed=4)
    assert np.array_equal(few, many[:5])
    uniforms = np.random.default_rng(1).random((big + 3, 50))
    lock_games, lock = C._run(big + 3, 50, None, uniforms)
    assert np.array_equal(lock.group_to, run_lockstep(big + 3, 50, uniforms)[1].group_to)
    small_games, small = C._run(3, 50, None, uniforms[:3])
    assert np.array_equal(small_games, lock_games[:3])
    assert np.array_equal(small.boards, lock.boards[:3])


def test_lockstep_castling_en_passant_and_pins_in_one_batch():
    """A batch whose random games hold all the special moves: the first position where each is
    legal matches python-chess's legal moves (the field-by-field tests cover the rest)."""
    games, rep = C.random_games_with_replay(300, 200, seed=21)
    kinds = {"castling": 0, "en passant": 0, "promotion": 0, "pinned piece": 0}
    for g in range(60):
        board = chess.Board()
        legal = rep.legal_lists(g)
        for t in range(int(rep.lengths[g])):
            moves = set(board.legal_moves)
            assert {chess.Move.from_uci(C.uci(m)) for m in legal[t]} == moves, (g, t)
            kinds["castling"] += any(board.is_castling(m) for m in moves)
            kinds["en passant"] += any(board.is_en_passant(m) for m in moves)
            kinds["promotion"] += any(m.promotion for m in moves)
            kinds["pinned piece"] += any(board.is_pinned(board.turn, sq) for sq in chess.SQUARES if board.color_at(sq) == board.turn and board.piece_type_at(sq) != chess.KING)
            board.push(C.decode_move(int(games[g, t])))
    assert all(kinds.values()), kinds


def test_lockstep_replay_equals_the_per_position_replay_and_reports_the_same_first_error():
    n, T = 120, 160
    games = C.random_games(n, T, seed=4).astype(np.int64)
    games[5, 30:] = -1  # rows cut short by pads
    games[77, 1:] = -1
    games[100, :] = -1
    per_position = C._run_python_chess
    if C.ENGINE == "cozy-chess":
        from core.games.chess.fast import run_cozy as per_position
    lock_games, lock = run_lockstep(n, T, None, games)
    ref_games, ref = per_position(n, T, games, None)
    assert np.array_equal(lock_games, ref_games)
    for field in RECORD_FIELDS:
        assert np.array_equal(getattr(lock, field), getattr(ref, field)), field

    def first_error(run, bad):
        with pytest.raises(C.MoveError) as info:
            run(bad)
        return str(info.value)

    ended = np.nonzero(lock.termination > 0)[0]
    after_end = games.copy()
    g = ended[0]
    after_end[g, lock.lengths[g]] = games[g, 0]
    illegal = games.copy()
    illegal[90, 10], illegal[60, 20] = games[90, 11], 4096 + games[60, 20] % 4096  # two bad games: 60 is reported
    for bad in (after_end, illegal):
        lock_error = first_error(lambda x: run_lockstep(n, T, None, x), bad)
        assert lock_error == first_error(lambda x: per_position(n, T, x, None), bad)
    assert "follows the end" in first_error(lambda x: run_lockstep(n, T, None, x), after_end)
    assert first_error(lambda x: run_lockstep(n, T, None, x), illegal).startswith("game 60, move 20")


def test_a_pgn_from_a_chess_site_reads_with_its_headers_and_annotations():
    """What lichess or chess.com export: tag pairs, clock comments, move annotations (!?, ??),
    NAGs, a variation and the result; the moves are python-chess's reading of the same text."""
    import io

    import chess.pgn

    text = ('[Event "Rated Blitz game"]\n[Site "https://lichess.org/abc"]\n[White "a"]\n[Black "b"]\n[Result "1-0"]\n\n'
            '1. e4 { [%clk 0:03:00] } 1... e5!? 2. Nf3?! Nc6 3. Bb5!! $1 a6?? 4. Ba4 (4. Bxc6 dxc6) Nf6 5. O-O! 1-0\n')
    theirs = [m.uci() for m in chess.pgn.read_game(io.StringIO(text)).mainline_moves()]
    assert [C.uci(m) for m in C.parse_moves(text)] == theirs and len(theirs) == 9
    assert [C.uci(m) for m in C.parse_moves(";1.e4 e5 2.Nf3")] == ["e2e4", "e7e5", "g1f3"]  # the ChessGPT game string
