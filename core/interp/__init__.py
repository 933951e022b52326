"""What BoardLens computes about a model, one subpackage per method (each page's core):

- ``shared``: what every method reads: next-move predictions, one cached pass of a position,
  activations over a corpus, board targets and properties, the index of a unit's activations,
  legality rates, text runs;
- ``probes``: linear probes, interventions along their directions, piece and move edits, the
  skill probe (the probe viewer);
- ``lens``: logit lens, direct logit attribution, move lens, attention, neurons (the logit lens);
- ``sae``: SAE features, metrics, storage and published formats (the SAE feature browser);
- ``patching``: activation and attribution patching (the patching lab).

A method package imports ``shared`` (and ``core.games``, ``core.models``, ``core.text``), never
another method package; ``shared`` imports no method package. ``tests/test_import_layers.py``
holds the code to this.
"""
