"""Chess engine speed: BoardLens's batched records vs a plain python-chess loop, in the same run.

    python bench/chess_engine.py [--games 200] [--reference-games 40] [--max-moves 128] [--repeats 3]

Both sides play the same uniformly random games (same seeds, the same canonical move order)
and produce the same training records: per position the 13-class board, the side to move and the
legal next-token weights of the ``uci-squares`` tokenizer (from-squares, then the to-squares of the
piece that moved). The plain loop does it one position at a time with python-chess's public API
(``piece_map``, ``legal_moves``, the game-end predicates); the records are checked equal, then
games/s and positions/s of both and their ratio are printed. Goal: >= 5x.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import chess
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.games.chess import rules as C  # noqa: E402
from core.games.registry import get_game  # noqa: E402


def plain_loop(n: int, max_moves: int, seed: int, game) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random games and their records, one python-chess position at a time."""
    tok = game.tokenizer
    uniforms = np.random.default_rng(seed).random((n, max_moves))
    ctx = game.n_ctx
    boards = np.zeros((n, max_moves, 8, 8), dtype=np.int8)
    weights = np.zeros((n, ctx, tok.d_vocab), dtype=np.float32)
    games = np.full((n, max_moves), -1, dtype=np.int64)
    for g in range(n):
        board = chess.Board()
        p = 0  # token position whose output predicts the next from-square
        for t in range(max_moves):
            moves = list(board.legal_moves)
            if t > 0 and (not moves or board.is_insufficient_material() or board.is_fifty_moves() or board.is_repetition(3)):
                break
            # The canonical order BoardLens picks from: from-square, to-square, promotion piece.
            ordered = sorted(moves, key=lambda m: (m.from_square, m.to_square, m.promotion or 0))
            move = ordered[int(uniforms[g, t] * len(moves))]
            if p < ctx:
                for m in moves:
                    weights[g, p, tok.square_token[m.from_square]] += 1
            if p + 1 < ctx:
                for m in moves:
                    if m.from_square == move.from_square:
                        weights[g, p + 1, tok.square_token[m.to_square]] += 1
            if move.promotion and p + 2 < ctx:
                for piece in C.PROMOTIONS:
                    weights[g, p + 2, tok.promo_token[piece]] += 1
            p += 3 if move.promotion else 2
            games[g, t] = C.encode_move(move)
            board.push(move)
            for square, piece in board.piece_map().items():
                boards[g, t, square // 8, square % 8] = piece.piece_type * (1 if piece.color else -1)
            _side_to_move = board.turn
        else:
            t = max_moves
        if t < max_moves:
            boards[g, t:] = boards[g, t - 1]
        elif p < ctx:  # the row ended with the game still going: its next from-squares
            for m in board.legal_moves:
                weights[g, p, tok.square_token[m.from_square]] += 1
    return games, boards, weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=200)
    parser.add_argument("--reference-games", type=int, default=40)
    parser.add_argument("--max-moves", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="time each side this many times, keep the best")
    parser.add_argument("--small-games", type=int, default=16, help="also time a batch this small (played one position at a time)")
    args = parser.parse_args()
    game = get_game("chess", tokenizer="uci-squares", n_ctx=2 * args.max_moves)

    # Best of --repeats runs for each side (as timeit does): the machine's noise only adds time.
    ref_s = ours_s = small_s = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        small_games, small_rep = C.random_games_with_replay(args.small_games, args.max_moves, args.seed)
        game.tokenizer.token_batch(small_games, small_rep, game.n_ctx)
        small_s = min(small_s, time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref_games, ref_boards, ref_weights = plain_loop(args.reference_games, args.max_moves, args.seed, game)
        ref_s = min(ref_s, time.perf_counter() - t0)
        t0 = time.perf_counter()
        games, rep = C.random_games_with_replay(args.games, args.max_moves, args.seed)
        batch = game.tokenizer.token_batch(games, rep, game.n_ctx)
        ours_s = min(ours_s, time.perf_counter() - t0)
    ref_positions = int((ref_games >= 0).sum())
    positions = int(rep.lengths.sum())

    k = args.reference_games
    assert np.array_equal(games[:k], ref_games), "different games"
    assert np.array_equal(rep.boards[:k], ref_boards), "different boards"
    assert np.array_equal(batch.weights[:k], ref_weights), "different next-token weights"

    ours_rate, ref_rate = args.games / ours_s, args.reference_games / ref_s
    print(f"records checked equal on {k} games ({ref_positions} positions)")
    print(f"plain python-chess loop : {ref_rate:8.1f} games/s  {ref_positions / ref_s:9.0f} positions/s")
    print(f"batched records         : {ours_rate:8.1f} games/s  {positions / ours_s:9.0f} positions/s")
    print(f"ratio                   : {ours_rate / ref_rate:.1f}x (goal >= 5x)")
    tokens = int(batch.valid.sum())
    print(f"training tokens made    : {tokens / ours_s:9.0f} tokens/s (a trainer reading fewer per second never waits)")
    how = "numpy lockstep" if args.games >= C.LOCKSTEP_MIN_GAMES else C.ENGINE
    print(f"our engine              : {how} ({args.games} games at once)")
    assert np.array_equal(small_games, games[: args.small_games]), "a small batch played other games"
    small_how = "numpy lockstep" if args.small_games >= C.LOCKSTEP_MIN_GAMES else f"{C.ENGINE}, one position at a time"
    small_rate = args.small_games / small_s
    label = f"{args.small_games} games at once"
    print(f"{label:<24}: {small_rate:8.1f} games/s  ratio {small_rate / ref_rate:.1f}x ({small_how})")


if __name__ == "__main__":
    main()
