"""Chess: python-chess's rules, batched for training and analysis, and the two published token
layouts.

``rules`` plays and replays games (python-chess decides every rule); ``records`` holds the move
codes and batched ``Replay`` records every engine shares; ``lockstep`` and ``fast`` are the two fast
engines checked against python-chess; ``san`` and ``properties`` compute SAN and Karvonen's board
properties for every position at once; ``tokens`` holds the tokenizers (UCI squares, PGN
characters) and ``game`` the ``Game`` plug-in. Imports only ``core.games.base`` and itself.
"""
