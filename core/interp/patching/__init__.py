"""The patching lab's method: batched activation patching equal to TransformerLens's
``patching`` module, attribution patching and their pricing (``sweeps``). Imports
``core.interp.shared`` and below.
"""
