"""The SAE feature browser's method, without training (``core.train.sae`` trains): feature
indexes and views (``features``), SAELens-style and board metrics (``metrics``,
``board_metrics``), the bundled store (``store``), published formats (``published``) and text
SAEs (``token_sae``). Imports ``core.interp.shared`` and below.
"""
