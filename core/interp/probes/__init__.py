"""The probe viewer's method: linear probes of the board (``linear_probes``), interventions along
their directions (``interventions``), piece and move edits built on them (``piece_edits``,
``move_edits``) and the skill probe (``skill_probe``). Imports ``core.interp.shared`` and below.
"""
