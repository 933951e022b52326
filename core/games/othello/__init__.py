"""Othello on even boards up to 8x8: the vectorised bitboard ``engine``, one interactive game's
state (``play``) and the ``Game`` plug-in (``game``). Imports only ``core.games.base`` and itself.
"""
