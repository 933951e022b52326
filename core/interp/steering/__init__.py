"""Steering and ablation: change one unit the pages show (an SAE feature, an MLP neuron, an
attention head) and run the model with the change (``edits``). Every edit is a scoped forward hook
through the ``ModelHandle`` lock: the shared model is never modified and no hook outlives the run.
Imports ``core.interp.shared`` and below.
"""
