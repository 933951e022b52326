"""circuit-tracer's side of ``bench/peer_circuit_tracer.py``: run in circuit-tracer's own virtual
environment (circuit-tracer 0.5.0, TransformerLens 3.2.1, transformers 4.57.3), never imports
``core``. It loads one of our bundled models from its folder (``config.json`` +
``model.safetensors``) and a transcoder set in SAELens's format, builds circuit-tracer's
``ReplacementModel`` with them, attributes the given tokens, and writes the adjacency matrix,
the features, the targets and circuit-tracer's own pruning masks and scores.

    CT_PYTHON bench/peer_circuit_tracer_side.py MODEL_DIR TRANSCODER_DIR TOKENS OUT.safetensors
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


class TokenIds:
    """A stand-in tokenizer: ids are their own names, and every id counts as special so that
    circuit-tracer does not prepend a BOS token (our board models have none)."""

    def __init__(self, vocab: int):
        self.vocab_size = vocab
        self.all_special_ids = list(range(vocab))
        self.bos_token_id = self.pad_token_id = self.eos_token_id = None
        self.padding_side = "right"

    def decode(self, ids) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else ids
        return " ".join(str(int(i)) for i in (ids if isinstance(ids, list) else [ids]))


def transcoder(folder: Path, layer: int, d_model: int):
    from circuit_tracer.transcoder.activation_functions import JumpReLU
    from circuit_tracer.transcoder.single_layer_transcoder import SingleLayerTranscoder

    w = load_file(str(folder / f"L{layer}" / "sae_weights.safetensors"))
    cfg = json.loads((folder / f"L{layer}" / "cfg.json").read_text())
    act = JumpReLU(w["threshold"].float()) if "threshold" in w else torch.nn.ReLU()
    tc = SingleLayerTranscoder(d_model, cfg["d_sae"], act, layer, skip_connection="W_skip" in w, device=torch.device("cpu"), dtype=torch.float32)
    with torch.no_grad():
        tc.W_enc.copy_(w["W_enc"].T)
        tc.W_dec.copy_(w["W_dec"])
        tc.b_enc.copy_(w["b_enc"])
        tc.b_dec.copy_(w["b_dec"])
        if "W_skip" in w:
            tc.W_skip.copy_(w["W_skip"])
    return tc


def main(model_dir: str, tc_dir: str, tokens: str, out: str) -> None:
    from circuit_tracer import ReplacementModel, attribute
    from circuit_tracer.graph import compute_graph_scores, prune_graph
    from circuit_tracer.transcoder import TranscoderSet
    from transformer_lens import HookedTransformerConfig

    torch.set_grad_enabled(True)
    config = json.loads((Path(model_dir) / "config.json").read_text())["tl_config"]
    cfg = HookedTransformerConfig(**config, device="cpu", dtype=torch.float32)
    tcs = TranscoderSet({layer: transcoder(Path(tc_dir), layer, cfg.d_model) for layer in range(cfg.n_layers)},
                        feature_input_hook="ln2.hook_normalized", feature_output_hook="hook_mlp_out")
    model = ReplacementModel.from_config(cfg, tcs)
    state = load_file(str(Path(model_dir) / "model.safetensors"))
    renamed = {k.replace(".mlp.", ".mlp.old_mlp.").replace("unembed.", "unembed.old_unembed."): v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(renamed, strict=False)
    missing = [k for k in missing if not k.startswith("transcoders.") and not k.endswith(("IGNORE", "mask"))]
    if missing or unexpected:
        raise SystemExit(f"weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tokenizer = TokenIds(cfg.d_vocab)
    ids = torch.tensor([int(t) for t in tokens.split(",")])
    graph = attribute(ids, model, max_n_logits=10, desired_logit_prob=0.95, batch_size=256)
    pruned = prune_graph(graph, node_threshold=0.8, edge_threshold=0.98)
    replacement, completeness = compute_graph_scores(graph)
    save_file({
        "adjacency": graph.adjacency_matrix.float().contiguous(),
        "active_features": graph.active_features.long().contiguous(),
        "activation_values": graph.activation_values.float().contiguous(),
        "selected_features": graph.selected_features.long().contiguous(),
        "logit_tokens": torch.tensor([t.vocab_idx for t in graph.logit_targets], dtype=torch.long),
        "logit_probabilities": graph.logit_probabilities.float().contiguous(),
        "node_mask": pruned.node_mask.contiguous(),
        "edge_mask": pruned.edge_mask.contiguous(),
        "scores": torch.tensor([replacement, completeness], dtype=torch.float64),
    }, out)


if __name__ == "__main__":
    main(*sys.argv[1:5])
