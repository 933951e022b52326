"""What every method reads, so that no method imports another: next-move predictions and the
position record, one cached pass of a position, activations collected over games, board targets
and properties, the sparse index of a unit's activations, top-1 legal rates and text runs.
Imports ``core.games``, ``core.models`` and ``core.text`` only.
"""
