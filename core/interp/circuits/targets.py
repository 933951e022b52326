"""What an attribution graph explains: one or more targets, each a sum of dot products of
directions with the residual stream at given (site, position) points.

- a logit: the unembedding's input at the last position times ``W_U[:, t]`` minus the mean
  column (circuit-tracer's demeaned logit: a logit relative to the average token);
- several logits at successive positions (chess-pgn: a whole move is its characters' logits,
  each read where that character is predicted);
- "legal minus illegal": the mean column of the legal tokens minus the mean of the illegal ones;
- a probe's reading: a linear probe's class direction minus its mean class direction, on the
  residual stream after a layer, at one position.

``weight`` is the target's share of the influence the graph is pruned by (a logit: its
probability, as circuit-tracer weighs logits; a single custom target: 1).
Sites: ``final`` (the unembedding's input), ``mlp_in.L`` (layer L's transcoder input) and
``resid_post.L`` (the residual stream after block L).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Target:
    label: str
    parts: list[tuple[str, int, torch.Tensor]]
    weight: float = 1.0
    kind: str = "logit"
    token: int | None = None

    def depth(self, n_layers: int) -> int:
        """The deepest layer the target reads (``n_layers`` for the unembedding's input)."""
        return max(n_layers if site == "final" else int(site.split(".")[1]) for site, _, _ in self.parts)


def demeaned_column(W_U: torch.Tensor, token: int) -> torch.Tensor:
    return (W_U[:, token] - W_U.mean(dim=1)).detach().float()


def logit_target(W_U: torch.Tensor, token: int, pos: int, label: str, weight: float) -> Target:
    return Target(label, [("final", pos, demeaned_column(W_U, token))], weight, "logit", int(token))


def salient_logits(W_U: torch.Tensor, logits: torch.Tensor, pos: int, labels: dict[int, str] | None = None, max_n: int = 10, cover: float = 0.95) -> list[Target]:
    """The fewest top logits whose probabilities reach ``cover``, at most ``max_n``
    (circuit-tracer's rule: the top ``max_n`` cut after the cumulative sum passes ``cover``)."""
    probs = torch.softmax(logits.float(), dim=-1)
    top_p, top_i = torch.topk(probs, min(max_n, len(probs)))
    cut = int(torch.searchsorted(torch.cumsum(top_p, 0), cover)) + 1
    labels = labels or {}
    return [logit_target(W_U, int(t), pos, labels.get(int(t), str(int(t))), float(p)) for p, t in zip(top_p[:cut], top_i[:cut])]


def sequence_target(W_U: torch.Tensor, tokens: list[int], first_pos: int, label: str, weight: float = 1.0) -> Target:
    """The sum of the demeaned logits of ``tokens[i]`` at position ``first_pos + i``: a move
    written in several tokens (its log-probability is the sum of theirs)."""
    return Target(label, [("final", first_pos + i, demeaned_column(W_U, t)) for i, t in enumerate(tokens)], weight, "sequence", int(tokens[0]))


def legal_minus_illegal(W_U: torch.Tensor, legal: torch.Tensor, pos: int) -> Target:
    """Mean legal logit minus mean illegal logit over the tokens ``legal`` marks (True/False)."""
    legal = torch.as_tensor(legal, dtype=torch.bool)
    if not legal.any() or legal.all():
        raise ValueError("legal minus illegal needs at least one legal and one illegal token")
    vec = W_U[:, legal].mean(1) - W_U[:, ~legal].mean(1)
    return Target("legal − illegal", [("final", pos, vec.detach().float())], 1.0, "legal")


def probe_target(weight: torch.Tensor, layer: int, pos: int, cls: int, label: str) -> Target:
    """A probe's class ``cls`` reading relative to the mean class: ``weight (d_model, n_classes)``
    on the residual stream after block ``layer``."""
    vec = weight[:, cls] - weight.mean(dim=1)
    return Target(label, [(f"resid_post.{layer}", pos, vec.detach().float())], 1.0, "probe")
