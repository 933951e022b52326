"""Circuits: the replacement model (every MLP replaced by its transcoder, ``replacement``) that
attribution graphs are computed in. Imports ``core.interp.shared`` and below.
"""
