"""``ModelHandle``: the only way pages and interp code touch a shared model.

One model object is shared by every browser session. PyTorch hooks are global to a module, so a
hook added by one session would change every other session's forward pass. The handle therefore
owns a lock: every forward (plain, cached or hooked) holds it for the whole pass, and hooks only
exist inside ``hooked()``/``session()`` blocks that remove them in a ``finally``.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch

from core.games.base import Game
from core.games.registry import get_game
from core.models import row_forward

Hook = tuple[str | Callable[[str], bool], Callable]
ATTENTION_BUDGET = 8_000_000  # attention scores per layer in one forward pass (32 MB in float32)


@dataclass
class ModelInfo:
    name: str
    game: str
    board_size: int
    card: dict = field(default_factory=dict)
    source: str = ""
    tokenizer: str = ""
    vocab: tuple[str, ...] | None = None  # the checkpoint's own token list, if it ships one
    kind: str = "game"  # "game": plays ``game``; "text": reads text through ``text_tokenizer``
    text_tokenizer: object = None  # a core.text.tokenizer.TextTokenizer for text models

    def game_plugin(self, n_ctx: int = 0) -> Game:
        if self.kind != "game":
            raise ValueError(f"{self.name} is a {self.kind} model: it plays no board game")
        return get_game(self.game, self.board_size, self.tokenizer, n_ctx if self.game == "chess" else 0, self.vocab)


def block_of(hook: str) -> int | None:
    """The block a hook lives in (``blocks.3.mlp.hook_post`` -> 3); None after the last block,
    and -1 before the first (embeddings)."""
    if hook.startswith("blocks."):
        return int(hook.split(".")[1])
    return -1 if hook.startswith(("hook_embed", "hook_pos_embed")) else None


def resume_layer(hook: str) -> int | None:
    """The first block a pass that starts from ``hook``'s activation runs: the residual stream
    before block L is all block L reads (``blocks.L.hook_resid_pre`` -> L), and the stream after
    it all block L+1 reads (``hook_resid_post`` -> L+1). None for any other hook (one inside a
    block: the rest of that block reads more than it)."""
    parts = hook.split(".")
    if len(parts) == 3 and parts[0] == "blocks" and parts[1].isdigit() and parts[2] in ("hook_resid_pre", "hook_resid_post"):
        return int(parts[1]) + (parts[2] == "hook_resid_post")
    return None


class ModelHandle:
    def __init__(self, model, info: ModelInfo):
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self._model = model
        self.info = info
        self._lock = threading.RLock()

    # -- facts -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def kind(self) -> str:
        """``"game"`` (a board-game model: ``game``) or ``"text"`` (a text model: ``tokenizer``)."""
        return self.info.kind

    @property
    def tokenizer(self):
        """A text model's ``TextTokenizer`` (None for board-game models, whose game tokenises)."""
        return self.info.text_tokenizer

    @property
    def board_size(self) -> int:
        return self.info.board_size

    @property
    def game(self) -> Game:
        """The game this model plays, with its tokenizer: everything rules- or token-specific."""
        return self.info.game_plugin(self._model.cfg.n_ctx)

    @property
    def cfg(self):
        return self._model.cfg

    @property
    def device(self) -> torch.device:
        """Where the model's weights live (results come back on it)."""
        return torch.device(self._model.cfg.device)

    @property
    def model(self):
        """The shared model, for reading weights (``W_U``, ``W_out``...). Never hook or edit it
        directly: use ``hooked()`` or ``session()``."""
        return self._model

    # -- forward passes ----------------------------------------------------------------------
    def rows_per_pass(self, n_pos: int) -> int:
        """Rows of ``n_pos`` tokens one forward pass may take: attention holds batch x heads x
        pos^2 scores (and as many probabilities) per layer, so long contexts get small batches
        (chess's 256 tokens: ~30 rows, not 200 at 3 GB) and a small server stays small."""
        return max(1, ATTENTION_BUDGET // (self.cfg.n_heads * n_pos * n_pos))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens (batch, pos)`` -> ``logits (batch, pos, d_vocab)``, on the CPU whatever the
        model's device (analysis code works on CPU tensors). The plain GPT architecture runs with
        fused causal attention (``row_forward.forward_whole``), as its corpus-wide activations do."""
        step = self.rows_per_pass(tokens.shape[-1])
        run = (lambda t: row_forward.forward_whole(self._model, t.to(self.device))[0]) if row_forward.supports(self._model) else self._model
        with self._lock, torch.inference_mode():
            return torch.cat([run(tokens[i : i + step]).cpu() for i in range(0, max(len(tokens), 1), step)])

    __call__ = forward

    def forward_keeping(self, tokens: torch.Tensor, hook: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, activations)`` of one pass: the output, and ``hook``'s activation at every
        position (both on the CPU), batched like ``forward``."""
        step = self.rows_per_pass(tokens.shape[-1])
        logits, acts = [], []
        fused = row_forward.supports(self._model) and row_forward.serves(self._model, [hook])  # the same pass as ``forward``'s
        with self._lock, torch.inference_mode():
            for i in range(0, max(len(tokens), 1), step):
                if fused:
                    out, cache = row_forward.forward_whole(self._model, tokens[i : i + step].to(self.device), [hook])
                else:
                    out, cache = self._model.run_with_cache(tokens[i : i + step], names_filter=lambda name: name == hook)
                logits.append(out.cpu())
                acts.append(cache[hook].cpu())
        return torch.cat(logits), torch.cat(acts)

    def forward_from(self, acts: torch.Tensor, layer: int, transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Logits of a pass that starts at block ``layer`` from the residual stream ``acts (batch,
        pos, d_model)`` (``resume_layer`` of the hook they were read at), each batch first mapped by
        ``transform`` (an SAE's reconstruction, an ablation): the blocks below are not run again.
        The numbers of ``run_with_hooks`` with ``transform`` hooked in at that hook (within float32
        rounding: the plain GPT runs with fused attention, as ``forward`` does)."""
        if self.cfg.positional_embedding_type == "shortformer":
            raise ValueError("a shortformer model adds its position embedding inside every block: run it from the tokens")
        step = self.rows_per_pass(acts.shape[1])
        out = []
        run = (lambda x: row_forward.forward_from(self._model, x, layer)) if row_forward.supports(self._model) else (lambda x: self._model(x, start_at_layer=layer))
        with self._lock, torch.inference_mode():
            for i in range(0, max(len(acts), 1), step):
                x = acts[i : i + step]
                x = transform(x) if transform is not None else x
                out.append(run(x.to(self.device, self.cfg.dtype)).cpu())
        return torch.cat(out)

    def run_with_cache(self, tokens: torch.Tensor, names_filter=None):
        """Logits and an ``ActivationCache`` (optionally only the hooks ``names_filter`` accepts)."""
        with self._lock, torch.inference_mode():
            logits, cache = self._model.run_with_cache(tokens, names_filter=names_filter)
        return logits.cpu(), cache.to("cpu")

    @contextmanager
    def prefix_session(
        self, prefix: torch.Tensor, cached=None, prefix_hooks: Sequence[Hook] | None = None, row_hooks: Sequence[Hook] | None = None
    ) -> Iterator[tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]]:
        """Run one shared prefix once, then continue it with batches of short rows.

        ``prefix (pos,)`` -> ``(prefix logits (pos, d_vocab), continue_rows)`` where
        ``continue_rows(rows (n, k)) -> logits (n, k, d_vocab)`` gives the same numbers as
        ``forward`` on ``prefix + row`` for every row; the prefix's keys and values are cached and
        shared by the rows (the lock is held for the whole block). This is what makes scoring every
        legal multi-token move of a position cost about one forward pass. For the plain GPT
        architecture the rows run through ``row_forward`` (every row reads the one copy of the
        prefix's keys and values), else through ``HookedTransformer`` with the cache repeated.

        ``cached``: ``(logits (1, pos, d_vocab), ActivationCache)`` of a pass over exactly
        ``prefix`` that kept every layer's ``attn.hook_k`` and ``attn.hook_v`` (the lens page's
        one cached pass): the keys and values are read from it instead of a second prefix pass.

        ``prefix_hooks`` (a list, even empty): run the prefix through TransformerLens with these
        forward hooks, and the rows with ``row_hooks`` (a list, even empty; positions there count
        from the row's start) or, with none (None), as without hooks: an edit of the prefix reaches
        the rows through its keys and values. Two runs that differ only in their hooks take the
        same kernels, so an edit that changes nothing gives the same numbers bit for bit.
        """
        from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

        def ones(t: torch.Tensor) -> torch.Tensor:  # every token is real: no padding to mask
            return torch.ones(t.shape, dtype=torch.int, device=t.device)

        with self._lock, torch.inference_mode():
            cache = TransformerLensKeyValueCache.init_cache(self.cfg, self.cfg.device, 1)
            names = [(f"blocks.{i}.attn.hook_k", f"blocks.{i}.attn.hook_v") for i in range(self.cfg.n_layers)]
            hooked = prefix_hooks is not None
            if not hooked and cached is not None and cached[0].shape[1] == len(prefix) and all(k in cached[1].cache_dict and v in cached[1].cache_dict for k, v in names):
                # hook_k / hook_v hold exactly what a pass appends to the key-value cache.
                for entry, (k, v) in zip(cache.entries, names):
                    entry.past_keys = cached[1][k].to(self.device, self.cfg.dtype)
                    entry.past_values = cached[1][v].to(self.device, self.cfg.dtype)
                cache.previous_attention_mask = torch.ones((1, len(prefix)), dtype=torch.int, device=self.device)
                prefix_logits = cached[0][0].cpu()
            else:
                try:
                    with self._model.hooks(fwd_hooks=list(prefix_hooks or ()), reset_hooks_end=True):
                        prefix_logits = self._model(prefix[None], past_kv_cache=cache, attention_mask=ones(prefix[None]))[0].cpu()
                finally:
                    self._model.reset_hooks(including_permanent=False)
            keys = [(e.past_keys, e.past_values) for e in cache.entries]
            mask = cache.previous_attention_mask
            shared = row_forward.prefix_keys(keys) if row_forward.supports(self._model) and row_hooks is None else None

            def continue_rows(rows: torch.Tensor, names: Sequence[str] = ()):
                """Logits of the rows; with ``names``, also those hooks' activations
                ``{hook: (n, k, width)}`` at the rows' positions (the logit lens of a move)."""
                rows = rows.to(self.device)
                if shared is not None and row_forward.serves(self._model, names):  # the prefix's keys and values read once for every row
                    logits, acts = row_forward.run_rows(self._model, shared, rows, names)
                    return (logits.cpu(), {h: acts[h].cpu() for h in names}) if names else logits.cpu()
                n = len(rows)
                for entry, (k, v) in zip(cache.entries, keys):
                    entry.past_keys, entry.past_values = k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)
                cache.previous_attention_mask = mask.expand(n, -1)
                cache.freeze()
                try:
                    with self._model.hooks(fwd_hooks=list(row_hooks or ()), reset_hooks_end=True):
                        if not names:
                            return self._model(rows, past_kv_cache=cache, attention_mask=ones(rows)).cpu()
                        wanted = set(names)
                        logits, acts = self._model.run_with_cache(rows, past_kv_cache=cache, attention_mask=ones(rows), names_filter=lambda name: name in wanted)
                        return logits.cpu(), {h: acts[h].cpu() for h in names}
                finally:
                    self._model.reset_hooks(including_permanent=False)

            yield prefix_logits, continue_rows

    def hook_width(self, hook: str) -> int:
        """Width of a hook's activation: the MLP's neurons for ``mlp.hook_post``/``hook_pre``,
        else the residual width."""
        return self.cfg.d_mlp if hook.endswith(("mlp.hook_post", "mlp.hook_pre")) else self.cfg.d_model

    def activations(self, tokens: torch.Tensor, hooks: Sequence[str]) -> dict[str, torch.Tensor]:
        """Some hooks' activations, running only the blocks they need.

        Collecting a middle layer for SAEs or probes does not need the layers above it or the
        unembedding: stopping early makes activation generation up to twice as fast. Residual
        streams and MLP neurons of the plain GPT architecture come from ``row_forward.run_whole``
        (fused causal attention, about twice as fast again on a CPU); any other hook from
        TransformerLens.
        """
        wanted = set(hooks)
        layers = [block_of(h) for h in wanted]
        stop = None if any(layer is None for layer in layers) else max(layers) + 1
        step = self.rows_per_pass(tokens.shape[-1])
        parts: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
        with self._lock, torch.inference_mode():
            for i in range(0, max(len(tokens), 1), step):
                cache = row_forward.cached_pass(self._model, tokens[i : i + step], wanted, stop_at_layer=stop)
                for h in hooks:
                    parts[h].append(cache[h].cpu())
        return {h: torch.cat(p) for h, p in parts.items()}

    def run_with_hooks(self, tokens: torch.Tensor, fwd_hooks: Sequence[Hook]) -> torch.Tensor:
        """Logits with temporary forward hooks; they are gone when this returns (or raises)."""
        with self.hooked(fwd_hooks) as model, torch.inference_mode():
            return model(tokens).cpu()

    @contextmanager
    def hooked(self, fwd_hooks: Sequence[Hook] = (), bwd_hooks: Sequence[Hook] = ()) -> Iterator:
        """Hold the lock with hooks attached; they are removed however the block ends."""
        with self._lock:
            try:
                with self._model.hooks(fwd_hooks=list(fwd_hooks), bwd_hooks=list(bwd_hooks), reset_hooks_end=True):
                    yield self._model
            finally:
                self._model.reset_hooks(including_permanent=False)

    @contextmanager
    def session(self) -> Iterator:
        """Exclusive use of the model for a multi-pass computation (patching, gradients)."""
        with self._lock:
            try:
                yield self._model
            finally:
                self._model.reset_hooks(including_permanent=False)
                self._model.zero_grad(set_to_none=True)
