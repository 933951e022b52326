"""Independent, deliberately plain Othello rules: one game, one square at a time.

Written from the rules, not from core.games.othello, so the two can check each other.
"""

from __future__ import annotations

DIRS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


class ScalarOthello:
    def __init__(self, size: int = 8):
        self.size = size
        self.board = [[0] * size for _ in range(size)]
        h = size // 2
        self.board[h - 1][h - 1] = -1
        self.board[h][h] = -1
        self.board[h - 1][h] = 1
        self.board[h][h - 1] = 1
        self.player = 1  # black first; 0 when the game is over

    def captures(self, row: int, col: int, player: int) -> list[tuple[int, int]]:
        if self.board[row][col] != 0:
            return []
        taken = []
        for dr, dc in DIRS:
            line = []
            r, c = row + dr, col + dc
            while 0 <= r < self.size and 0 <= c < self.size and self.board[r][c] == -player:
                line.append((r, c))
                r, c = r + dr, c + dc
            if line and 0 <= r < self.size and 0 <= c < self.size and self.board[r][c] == player:
                taken.extend(line)
        return taken

    def legal_moves(self, player: int) -> list[int]:
        if player == 0:
            return []
        return [
            r * self.size + c
            for r in range(self.size)
            for c in range(self.size)
            if self.captures(r, c, player)
        ]

    def play(self, square: int) -> list[int]:
        """Play for the side to move; return flipped squares. Resolves passes and game end."""
        r, c = divmod(square, self.size)
        taken = self.captures(r, c, self.player)
        if not taken:
            raise ValueError(f"illegal move {square}")
        self.board[r][c] = self.player
        for tr, tc in taken:
            self.board[tr][tc] = self.player
        mover = self.player
        if self.legal_moves(-mover):
            self.player = -mover
        elif self.legal_moves(mover):
            self.player = mover
        else:
            self.player = 0
        return [tr * self.size + tc for tr, tc in taken]
