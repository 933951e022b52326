"""Sample game files, made here: a random mover against a one-ply greedy mover.

    python -m core.sample_games chess assets/corpora/chess_random_vs_greedy.pgn --games 200
    python -m core.sample_games othello assets/corpora/othello_random_vs_greedy.txt --games 200   # ~4 minutes
    python -m core.sample_games othello assets/corpora/othello6_random_vs_greedy.txt --games 200 --size 6

Skill is real and known in these games: the greedy side (chess: takes the most valuable piece it
can, else moves at random; Othello: flips the most discs) beats the random side most of the time.
Each game says which side is which in its headers (chess: ``White``/``Black`` and ratings
``WhiteElo``/``BlackElo`` of 1200 for the greedy side and 800 for the random one, labels rather
than measured ratings); sides alternate from game to game.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import chess

PIECE_VALUE = {chess.PAWN: 1, chess.KNIGHT: 3, chess.BISHOP: 3, chess.ROOK: 5, chess.QUEEN: 9, chess.KING: 0}
MAX_PLIES = 300


def greedy_chess_move(board: chess.Board, rng: random.Random) -> chess.Move:
    moves = list(board.legal_moves)
    captures = [(PIECE_VALUE[board.piece_type_at(m.to_square) or chess.PAWN], m) for m in moves if board.is_capture(m)]
    if captures:
        best = max(v for v, _ in captures)
        return rng.choice([m for v, m in captures if v == best])
    return rng.choice(moves)


def chess_games(n: int, seed: int = 0) -> str:
    """``n`` games as PGN; the greedy side is White in even games, Black in odd ones."""
    import chess.pgn

    rng = random.Random(seed)
    out = []
    for g in range(n):
        board = chess.Board()
        greedy_white = g % 2 == 0
        while not board.is_game_over(claim_draw=True) and board.ply() < MAX_PLIES:
            greedy = board.turn == chess.WHITE if greedy_white else board.turn == chess.BLACK
            board.push(greedy_chess_move(board, rng) if greedy else rng.choice(list(board.legal_moves)))
        game = chess.pgn.Game.from_board(board)
        game.headers.update({
            "Event": "BoardLens sample: random mover vs capture-greedy mover", "Site": "generated", "Round": str(g + 1),
            "White": "greedy" if greedy_white else "random", "Black": "random" if greedy_white else "greedy",
            "WhiteElo": "1200" if greedy_white else "800", "BlackElo": "800" if greedy_white else "1200",
            "Result": board.result(claim_draw=True) if board.is_game_over(claim_draw=True) else "*",
        })
        out.append(str(game))
    return "\n\n".join(out) + "\n"


def othello_games(n: int, size: int = 8, seed: int = 0) -> str:
    """``n`` Othello games, one per line (``d3 c5 …``); a comment line names each game's sides."""
    import numpy as np

    from core.games.othello import engine as othello
    from core.games.registry import get_game

    game = get_game("othello", size)
    rng = random.Random(seed)
    lines = ["# BoardLens sample: random mover vs greedy mover (most discs flipped); the comment before each game says who plays black"]
    for g in range(n):
        greedy_black = g % 2 == 0
        moves: tuple[int, ...] = ()
        state = game.state(moves)
        while not state.is_over:
            legal = list(state.legal_moves)
            greedy = (state.to_move == 1) == greedy_black  # 1: black to move
            if greedy:  # every candidate replayed in one batch: the discs each would change
                candidates = np.array([moves + (int(m),) for m in legal], dtype=np.int64)
                after = othello.replay(candidates, size).boards[:, len(moves)]
                counts = (after != state.board[None]).reshape(len(legal), -1).sum(1)
                move = legal[int(np.argmax(counts))]
            else:
                move = rng.choice(legal)
            moves += (int(move),)
            state = game.state(moves)
        lines.append(f"# game {g + 1}: black {'greedy' if greedy_black else 'random'}, white {'random' if greedy_black else 'greedy'}")
        lines.append(game.format_moves(moves))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m core.sample_games", description=__doc__.split("\n\n")[0])
    parser.add_argument("game", choices=["chess", "othello"])
    parser.add_argument("out")
    parser.add_argument("--games", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=8, help="Othello board size (6 or 8)")
    args = parser.parse_args(argv)
    text = chess_games(args.games, args.seed) if args.game == "chess" else othello_games(args.games, size=args.size, seed=args.seed)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"wrote {args.games} games to {args.out}")


if __name__ == "__main__":
    main()
