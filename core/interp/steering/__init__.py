"""Steering and ablation: change one unit the pages show (an SAE feature, an MLP neuron, an
attention head) and run the model with the change. ``edits``: the units, the operations and their
scoped hooks; ``outcome``: the next move (or tokens) with and without an edit, computed on the same
kernels; ``sweep``: many edits in one batch (a strength sweep beside a random unit; sets of
features against random sets); ``verdict``: the sentence that sums an edit up. Every edit is a
scoped forward hook through the ``ModelHandle`` lock: the shared model is never modified and no
hook outlives the run. Imports ``core.interp.shared`` and below.
"""
