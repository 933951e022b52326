"""The logit lens's method: the lens and direct logit attribution, attention patterns and neuron
views (``logit_lens``), whole moves of multi-token layouts (``move_lens``), the neuron index
(``neurons``) and the text models' views (``token_lens``). Imports ``core.interp.shared`` and below.
"""
