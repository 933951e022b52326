"""The five pages for a text model: prompt player, logit lens, SAE browser, patching lab, and the
probe viewer's reason for not applying. ``serve(title)`` is called by the page files themselves
(``shell.serve_text_model``), so a link to any page works for any model.
"""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import streamlit as st
import torch

from ui import caches
from ui import messages
from ui import sae_caches
from ui import session
from ui import shell
from ui import steering_panel as steer
from core.interp.patching import sweeps as PT
from core.interp.sae import features as F
from core.interp.sae import store as sae_store
from core.interp.sae import token_sae as TS
from core.interp.lens import token_lens as TV
from core.viz.attention import head_grid_thumbnails, head_pattern_figure
from core.viz.patching import block_maps_figure, head_grid_figure
from core.viz.text import contribution_figure, histogram_figure, label, lens_table_figure, loss_strip_figure, token_html, top_tokens_figure, visible
from ui import text_panels as TP
from ui.export import chart_config

LENS_ROWS = 40  # positions the lens table shows (the last ones: where the prompt is going)


def serve(title: str) -> None:
    {"Board player": prompt_player, "Probe viewer": probe_viewer, "Logit lens": logit_lens, "SAE feature browser": sae_browser, "Patching lab": patching_lab, "Circuits": circuits}[title]()


def _top(title: str):
    """Title, messages and the model (the page stops, keeping its link, when it cannot load)."""
    st.title(title)
    messages.show_messages()
    handle, _ = shell.current_handle()
    if handle is None:
        session.sync_url()
        st.stop()
    return handle


def _position_control(n: int, key: str, label: str = "Position") -> int:
    session.linked_setting(key, "pos", list(range(n)), [str(i) for i in range(n)], "token position", n - 1)
    return int(st.slider(label, 0, max(n - 1, 1), key=key, disabled=n < 2, help="The token whose next-token prediction is read (0 is the start token)."))


# -- prompt player --------------------------------------------------------------------------------


def prompt_player() -> None:
    handle = _top("Prompt player")
    tokens = TP.prompt_section(handle)
    pred = TP.cached_next_tokens(handle.name, tokens)
    labels = TP.spans(handle, tokens)
    if np.isfinite(pred.mean_loss):
        st.caption(f"{len(tokens)} tokens; mean loss of the real next token **{pred.mean_loss:.3f}** nats. Each token is shaded by the loss of the token after it (hover: loss and the model's top guess).")
    else:
        st.caption(f"{len(tokens)} token: no real next token to score yet. Type a prompt above; the chart shows what the model would write first.")
    titles = [f"next: {TP.token_name(handle, pred.actual[i]) if pred.actual[i] >= 0 else '—'}  loss {pred.loss[i]:.2f}  top: {TP.token_name(handle, pred.top_ids[i, 0])} {pred.top_probs[i, 0]:.0%}" for i in range(len(tokens))]
    st.html(token_html(labels, pred.loss, vmax=8.0, titles=titles))
    left, right = st.columns([3, 2], gap="large")
    with right:
        pos = _position_control(len(tokens), "text_pos")
        names = [TP.token_name(handle, t) for t in pred.top_ids[pos]]
        real = f"; the text goes on with {TP.token_name(handle, pred.actual[pos])!r} (p {pred.actual_prob[pos]:.1%}, rank {pred.actual_rank[pos]})" if pred.actual[pos] >= 0 else " (the end of the prompt: what the model would write next)"
        st.plotly_chart(top_tokens_figure(names, pred.top_probs[pos], html.escape(f"Next token after {visible(labels[pos])!r}")), config=chart_config(), key="next_bar")
        st.caption(messages.plain(f"Entropy {pred.entropy[pos]:.2f} nats{real}."))
    with left:
        st.plotly_chart(loss_strip_figure(labels, pred.loss), config=chart_config(), key="loss_strip")
        table = pd.DataFrame({
            "token": [visible(t) for t in labels],
            "next (real)": [TP.token_name(handle, a) if a >= 0 else "" for a in pred.actual],
            "p(real)": pred.actual_prob,
            "rank": np.where(pred.actual_rank > 0, pred.actual_rank, np.nan),
            "loss": pred.loss,
            "top 5": [" | ".join(TP.token_name(handle, t) for t in row[:5]) for row in pred.top_ids],
        })
        st.dataframe(table, height=300, column_config={"p(real)": st.column_config.NumberColumn(format="percent"), "loss": st.column_config.NumberColumn(format="%.2f")})
    session.sync_url({"pos": str(pos)})


# -- probe viewer ---------------------------------------------------------------------------------


def probe_viewer() -> None:
    _top("Probe viewer")
    st.info("Probes read a board's state (whose piece stands on each square) from the residual stream. "
            "A text model has no board, so there is nothing for a board probe to read. For a text model, "
            "the SAE feature browser finds the directions it uses, and the logit lens shows how its next-token guess forms.")
    session.sync_url()


# -- logit lens -----------------------------------------------------------------------------------


def logit_lens() -> None:
    handle = _top("Logit lens")
    tokens = TP.prompt_section(handle)
    run = TP.cached_run(handle.name, tokens)
    labels = TP.spans(handle, tokens)
    incl_mid = st.toggle("Also after each attention layer", value=True, key="text_lens_mid")
    points, ids, probs = TV.lens_top_tokens(handle, run, k=1, incl_mid=incl_mid)
    names = [[TP.token_name(handle, t) for t in row[:, 0]] for row in ids]
    first = max(0, len(tokens) - LENS_ROWS)
    if first:
        st.caption(f"Showing the last {LENS_ROWS} of {len(tokens)} positions.")
    st.plotly_chart(lens_table_figure(points, labels[first:], [row[first:] for row in names], probs[:, first:, 0], first), config=chart_config(), key="lens_table")
    pos = _position_control(len(tokens), "text_lens_pos")
    pred = TP.cached_next_tokens(handle.name, tokens)
    candidates = list(dict.fromkeys(([int(pred.actual[pos])] if pred.actual[pos] >= 0 else []) + [int(t) for t in pred.top_ids[pos]]))
    c1, c2 = st.columns(2)
    picked = c1.selectbox("Token to attribute", candidates, key=f"dla_target_{pos}", format_func=lambda t: TP.token_name(handle, t) + (" (really next)" if t == pred.actual[pos] else ""),
                          help="The direct effect of each component on this token's logit at the chosen position: the token that really comes next, or one of the model's top guesses.")
    typed = c2.text_input("…or type one (its first token)", key="dla_typed")
    typed_ids = handle.tokenizer.encode(typed) if typed else []
    target = int(typed_ids[0]) if typed_ids else int(picked)
    attr = TV.attribute_tokens(handle, run, pos)
    values = attr.dla[:, target].numpy()
    st.plotly_chart(contribution_figure(attr.labels, values, html.escape(f"Direct effect on the logit of {TP.token_name(handle, target)!r} at position {pos} (after {visible(labels[pos])!r})")), config=chart_config(), key="dla_bars")
    total = float(values.sum() + attr.bias[target])
    st.caption(f"The parts and the bias add up to the logit: {total:.3f} (the model's {float(attr.logits[target]):.3f}). "
               f"Probability after each point: " + ", ".join(f"{p} {q:.1%}" for p, q in zip(points, TV.lens_token_probs(handle, run, target, incl_mid)[:, pos])))
    from core.interp.lens.logit_lens import top_neurons

    neurons = top_neurons(attr, target, k=10)
    st.dataframe(pd.DataFrame(neurons), height=250)
    head = _attention_view(handle, run, labels, pos)
    st.subheader("Steer a head or a neuron")
    units = [head] + [f"L{int(n['layer'])}N{int(n['index'])}" for n in neurons]
    _steer_unit_panel(handle, tokens, units, "text_lens_steer_unit")
    session.sync_url({"pos": str(pos), "head": head} | _steer_link("text_lens_steer_unit"))


def _steer_unit_panel(handle, tokens: tuple[int, ...], units: list[str], key: str) -> None:
    """A choice of unit (``L1H3`` heads, ``L0N12`` neurons) and the steering panel for it, at the
    prompt's last token; the greedy continuation follows the prompt."""
    session.linked_setting(key, "steer_unit", units, units, "unit to steer (one of those listed)", units[0])
    picked = st.selectbox("Unit to steer", units, key=key, help="The head shown above, or one of the neurons with the largest direct effect on the token attributed.")
    layer, kind, number = re.fullmatch(r"L(\d+)([HN])(\d+)", picked).groups()
    windows = _index_windows(handle.name)[0]
    windows = None if windows is None else torch.as_tensor(windows[: steer.MEAN_GAMES], dtype=torch.int64)
    unit = steer.head_unit(int(layer), int(number), windows=windows) if kind == "H" else steer.neuron_unit(int(layer), int(number), windows=windows)
    steer.steering_panel(handle, unit, "steer_text_unit", tokens=torch.tensor(tokens))


def _steer_link(key: str) -> dict[str, str]:
    on = st.session_state.get("steer_text_unit_on")
    return ({"steer_unit": st.session_state[key]} if on and key in st.session_state else {}) | steer.link_params("steer_text_unit")


def _attention_view(handle, run, labels: list[str], pos: int) -> str:
    """Every head's pattern as thumbnails, and one head large up to the chosen position, with the
    tokens as labels (as the board models' lens shows them); returns the head shown."""
    from core.interp.lens.logit_lens import attention_patterns

    st.subheader("Attention")
    patterns = attention_patterns(handle, (), run=run)
    names = [f"L{layer}H{h}" for layer in range(handle.cfg.n_layers) for h in range(handle.cfg.n_heads)]
    session.linked_setting("text_attention_head", "head", names, names, "attention head (L<layer>H<head>)",
                      names[int(np.argmax(patterns[:, :, pos, :pos].sum(-1).reshape(-1)))] if pos else names[0])  # default: the head that looks furthest back from here
    head = st.selectbox("Head", names, key="text_attention_head", help="Rows: the position attending (destination); columns: the positions it reads (source).")
    layer, h = (int(x) for x in head[1:].split("H"))
    first = max(0, pos + 1 - LENS_ROWS)  # the last positions up to the chosen one: a readable matrix
    shown = [label(t) for t in labels[first : pos + 1]]
    st.plotly_chart(head_pattern_figure(patterns[layer, h, first : pos + 1, first : pos + 1], shown, head, current=len(shown) - 1), config=chart_config(f"attention-{head}"), key="text_attention_head_big")
    st.caption(f"{head}: what each position up to {pos} attends to" + (f" (the last {LENS_ROWS} positions)" if first else "") + "; orange frame: the chosen position.")
    with st.expander("Every head (thumbnails)"):
        st.plotly_chart(head_grid_thumbnails(patterns, labels), config=chart_config("attention-every-head"), key="text_attention_thumbs")
    return head


# -- SAE browser ----------------------------------------------------------------------------------


def _sae_choices(handle) -> dict[str, tuple[str, object]]:
    """SAE name -> (where it comes from, how to load it)."""
    out = {e.name: ("bundled", e) for e in sae_store.list_saes(handle.name)}
    if handle.name == "gelu-1l":
        from core.interp.sae.published import NANDA_SAE_REPO, NANDA_VERSIONS
        from core.models.hub_files import cached_path

        for label, number in NANDA_VERSIONS.items():
            if cached_path(NANDA_SAE_REPO, f"{number}.pt"):
                out[f"nanda-{label}"] = ("hub", label)
    return out


@st.cache_resource(show_spinner="Loading SAE…", max_entries=8)
def _load_sae(name: str, sae_name: str):
    """``(sae, hook, card)`` of a bundled or published SAE of a text model."""
    handle = caches.cached_model(name)
    source, what = _sae_choices(handle)[sae_name]
    if source == "bundled":
        return sae_caches.cached_bundled_sae(name, sae_name), what.hook, what.card
    from core.interp.sae.published import load_nanda_sae

    published = load_nanda_sae(what)
    if published.sae.cfg.d_in != handle.hook_width(published.hook):
        raise sae_store.SAELoadError(f"{sae_name} reads {published.sae.cfg.d_in} dimensions; {published.hook} of {name} has {handle.hook_width(published.hook)}")
    return published.sae, published.hook, {"hook": published.hook, "note": published.note}


def _index(handle, sae_name: str, sae, hook: str):
    """The SAE's feature index over held-out text: shipped, cached, or built once with a bar."""
    from core import corpus_results

    windows, where = _index_windows(handle.name)
    if windows is None:
        return None, where
    return caches.corpus_result(handle, corpus_results.token_index_result(handle, sae, hook, sae_name, windows, where)), where


@st.cache_data(show_spinner=False, max_entries=256)
def _splice(name: str, sae_name: str, tokens: tuple[int, ...]):
    sae, hook, _ = _load_sae(name, sae_name)
    handle = caches.cached_model(name)
    comparison = TS.splice_comparison(handle, sae, hook, torch.tensor(tokens))
    top = comparison.features.topk(min(8, comparison.features.shape[1]), dim=-1)
    return comparison.top_k(5), comparison.clean_loss, comparison.spliced_loss, top.indices.numpy(), top.values.numpy()


def _context_html(handle, index, window: int, token: int, feature: int, radius: int = 24) -> str:
    lo, hi = max(0, token - radius), min(index.width, token + 6)
    ids = index.windows[window, lo:hi]
    acts = np.zeros(hi - lo)
    positions, values = index.activations(feature)
    flat = window * index.width + np.arange(lo, hi)
    hit = dict(zip(positions.tolist(), values.tolist()))
    acts = np.array([hit.get(int(p), 0.0) for p in flat])
    texts = handle.tokenizer.spans(ids.tolist())
    return token_html(texts, acts, vmax=float(index.max_activation[feature]) or 1.0, titles=[f"{a:.3f}" for a in acts], mark=token - lo)


def sae_browser() -> None:
    handle = _top("SAE feature browser")
    choices = _sae_choices(handle)
    if not choices:
        st.info(f"No SAE for {handle.name} yet. Train one: `python -m core.train sae {handle.name} assets/saes/{handle.name}/L0_mlp_post --hook blocks.0.mlp.hook_post`.")
        session.sync_url()
        return
    names = list(choices)
    session.linked_setting("text_sae", "sae", names, names, "SAE", names[0])
    sae_name = st.selectbox("SAE", names, key="text_sae")
    try:
        sae, hook, card = _load_sae(handle.name, sae_name)
    except sae_store.SAELoadError as exc:
        messages.error(f"SAE {sae_name!r} could not be loaded: {exc}")
        session.sync_url({"sae": sae_name})
        return
    metrics = card.get("metrics") if isinstance(card.get("metrics"), dict) else {}
    if metrics:
        st.caption(f"{int(sae.cfg.d_sae):,} features on `{hook}`: L0 {metrics.get('l0', float('nan')):.1f}, FVU {metrics.get('fvu', float('nan')):.3f}, "
                   f"CE recovered {metrics.get('ce_recovered_zero', float('nan')):.1%} (zero ablation), {metrics.get('ce_recovered_mean', float('nan')):.1%} (mean); "
                   f"dead {metrics.get('dead_fraction', float('nan')):.1%}, dense {metrics.get('dense_fraction', float('nan')):.1%}; CE clean {metrics.get('ce_clean', float('nan')):.3f} → with the SAE {metrics.get('ce_sae', float('nan')):.3f} nats.")
    else:
        st.caption(messages.plain(card.get("note", f"{int(sae.cfg.d_sae):,} features on {hook}")))
    index, where = _index(handle, sae_name, sae, hook)
    tokens, _ = TP.prompt_tokens(handle)
    last_top = int(_splice(handle.name, sae_name, tokens)[3][-1, 0])  # the strongest feature at the prompt's last token
    prompt_tab, feature_tab, table_tab = st.tabs(["This prompt", "Feature", "All features"])
    with prompt_tab:
        _prompt_view(handle, sae_name)
    with feature_tab:
        feature = _feature_view(handle, sae, sae_name, hook, index, where, last_top)
    with table_tab:
        if index is not None:
            density, max_act = index.density, index.max_activation
            order = np.lexsort((-density, density == 0))
            st.dataframe(pd.DataFrame({"feature": order, "density": density[order], "max activation": max_act[order],
                                       "top tokens": [", ".join(TP.token_name(handle, t) for t, _ in index.token_counts(int(f), 3)) for f in order[:300]] + [""] * max(0, len(order) - 300)}),
                         height=400, column_config={"density": st.column_config.NumberColumn(format="percent")})
            st.caption(f"Features by how often they fire, over {where}; dead features last.")
    session.sync_url({"sae": sae_name, "feature": str(feature)} | steer.link_params("steer_text_feature"))


def _prompt_view(handle, sae_name: str) -> None:
    tokens = TP.prompt_section(handle)
    (c_ids, c_p, s_ids, s_p), clean_loss, spliced_loss, feat_ids, feat_vals = _splice(handle.name, sae_name, tokens)
    labels = TP.spans(handle, tokens)
    if np.isfinite(clean_loss).any():
        st.caption(f"Mean loss of the real next token: {np.nanmean(clean_loss):.3f} nats without the SAE, {np.nanmean(spliced_loss):.3f} with it spliced in "
                   f"(Δ {np.nanmean(spliced_loss - clean_loss):+.3f}); top-1 agrees at {(c_ids[:, 0] == s_ids[:, 0]).mean():.0%} of {len(tokens)} positions.")
    else:
        st.caption(f"Top-1 with and without the SAE agrees at {(c_ids[:, 0] == s_ids[:, 0]).mean():.0%} of {len(tokens)} position(s); type a longer prompt to compare the loss of real next tokens.")
    st.plotly_chart(loss_strip_figure(labels, clean_loss, spliced_loss), config=chart_config(), key="sae_loss_strip")
    st.dataframe(pd.DataFrame({
        "token": [visible(t) for t in labels],
        "loss": clean_loss, "loss with SAE": spliced_loss, "Δ": spliced_loss - clean_loss,
        "top 5": [" | ".join(f"{TP.token_name(handle, t)} {p:.0%}" for t, p in zip(ids, ps)) for ids, ps in zip(c_ids, c_p)],
        "top 5 with SAE": [" | ".join(f"{TP.token_name(handle, t)} {p:.0%}" for t, p in zip(ids, ps)) for ids, ps in zip(s_ids, s_p)],
        "features": [", ".join(f"#{f} {v:.2f}" for f, v in zip(fi, fv) if v > 0) for fi, fv in zip(feat_ids, feat_vals)],
    }), height=320, column_config={k: st.column_config.NumberColumn(format="%.2f") for k in ("loss", "loss with SAE", "Δ")})


@st.cache_resource(show_spinner=False, max_entries=8)
def _directions(name: str, sae_name: str, _sae, hook: str):
    """Each feature's direction in the residual stream (``W_dec @ W_out``), once per SAE, not per rerun."""
    return F.residual_directions(caches.cached_model(name), _sae, hook)


@st.cache_resource(show_spinner=False, max_entries=8)
def _index_windows(name: str):
    """The held-out windows the feature index reads (and where from), read once per model: the
    shard's hash check and read are not repeated on every rerun."""
    from core.text.shard import index_windows

    return index_windows(caches.cached_model(name))


def _feature_view(handle, sae, sae_name: str, hook: str, index, where: str, default: int) -> int:
    d_sae = int(sae.cfg.d_sae)
    session.linked_setting("text_feature", "feature", list(range(d_sae)), [str(i) for i in range(d_sae)], "feature", default)
    st.caption("Opens on the strongest feature at the prompt's last token; the table under “All features” lists every one.")
    feature = int(st.number_input("Feature", 0, d_sae - 1, key="text_feature"))
    search = st.text_input("Which features fire on this token?", key="text_feature_search", help="Type a word or symbol; its first token is looked up in the index.")
    if search and index is not None:
        ids = handle.tokenizer.encode(search)
        hits = index.units_on_token(int(ids[0])) if ids else []
        if hits:
            st.dataframe(pd.DataFrame([{"feature": u, "fires on": f"{share:.0%} of its occurrences", "mean activation": mean} for u, share, mean in hits]), height=200)
        else:
            st.caption(messages.plain(f"No feature fires on {TP.token_name(handle, ids[0]) if ids else search!r} in the index."))
    windows = _index_windows(handle.name)[0]
    windows = None if windows is None else torch.as_tensor(windows[: steer.MEAN_GAMES], dtype=torch.int64)
    steer.steering_panel(handle, steer.feature_unit(sae, hook, sae_name, feature, index, windows=windows), "steer_text_feature", tokens=torch.tensor(TP.prompt_tokens(handle)[0]))
    effects = F.logit_effects_tokens(handle, _directions(handle.name, sae_name, sae, hook), feature)
    up, down = np.argsort(-effects)[:10], np.argsort(effects)[:10]
    c1, c2 = st.columns(2)
    c1.dataframe(pd.DataFrame({"promotes": [TP.token_name(handle, t) for t in up], "logit effect": effects[up]}), height=390)
    c2.dataframe(pd.DataFrame({"suppresses": [TP.token_name(handle, t) for t in down], "logit effect": effects[down]}), height=390)
    if index is None:
        st.info(messages.plain(f"No corpus for the feature index: {where}."))
        return feature
    positions, values = index.activations(feature)
    st.caption(f"Feature {feature}: fires on {index.density[feature]:.2%} of {index.n_positions:,} tokens ({where}); max activation {index.max_activation[feature]:.3f}. "
               f"Most often on: " + ", ".join(f"{TP.token_name(handle, t)} ×{n}" for t, n in index.token_counts(feature, 6)))
    if len(values):
        st.plotly_chart(histogram_figure(values, f"Activations of feature {feature} where it fires"), config=chart_config(), key="feature_hist")
    st.markdown("**Top activations** (distinct contexts; the firing token outlined, hover for the value)")
    for w, t, v in TS.top_contexts(index, feature, k=20):
        st.html(f'<div style="display:flex;gap:8px"><code style="min-width:4em">{v:.2f}</code>{_context_html(handle, index, w, t, feature)}</div>')
    for band, items in TS.band_contexts(index, feature):
        with st.expander(f"Samples with activation in {band}"):
            for w, t, v in items:
                st.html(f'<div style="display:flex;gap:8px"><code style="min-width:4em">{v:.2f}</code>{_context_html(handle, index, w, t, feature)}</div>')
    return feature


# -- patching lab ---------------------------------------------------------------------------------

CORRUPTED = "text_corrupted"


def patching_lab() -> None:
    handle = _top("Patching lab")
    st.caption("Activation patching: run a corrupted prompt, copy one activation from the clean prompt's run into it, and see how far that moves the metric back.")
    clean = TP.prompt_section(handle, "Clean prompt")
    if CORRUPTED not in st.session_state:
        st.session_state[CORRUPTED] = same_length_variant(handle.tokenizer, st.session_state.get(session.PROMPT, ""))
    st.text_area("Corrupted prompt (the same number of tokens)", key=CORRUPTED, height=120)
    lead = list(clean[:1]) if clean and clean[0] == handle.tokenizer.end_of_text else []
    corrupted = tuple(lead + handle.tokenizer.encode(st.session_state[CORRUPTED]))  # counted whole: the message says its real length
    if len(corrupted) != len(clean):
        st.warning(f"The clean prompt is {len(clean):,} tokens and the corrupted one {len(corrupted):,}: patching copies activations position by position, so both must have the same number of tokens.")
        session.sync_url()
        return
    pred = TP.cached_next_tokens(handle.name, clean)
    other_pred = TP.cached_next_tokens(handle.name, corrupted)
    c1, c2 = st.columns(2)
    clean_top = [int(t) for t in pred.top_ids[-1]]
    corrupted_top = [t for t in dict.fromkeys(int(t) for t in other_pred.top_ids[-1]) if t != clean_top[0]] + clean_top[1:]
    answer = _token_choice(c1, handle, "Answer token (the clean prompt's top next tokens)", clean_top, "text_answer")
    other = _token_choice(c2, handle, "Other token (the corrupted prompt's top next tokens)", list(dict.fromkeys(corrupted_top)), "text_other")
    a_ids, o_ids = [answer], [other]
    maps, clean_value, corrupted_value = _block_maps(handle.name, clean, corrupted, int(a_ids[0]), int(o_ids[0]))
    st.caption(messages.plain(f"Metric: logit of {TP.token_name(handle, a_ids[0])!r} minus {TP.token_name(handle, o_ids[0])!r} at the last position: clean {clean_value:.3f}, corrupted {corrupted_value:.3f}. "
                        f"Maps: 1 = patching that site restores the clean value, 0 = no effect."))
    if warning := PT.small_gap_warning(clean_value, corrupted_value):
        st.warning(warning)
    labels = [label(t.strip()[:6] or t[:6]) for t in TP.spans(handle, clean)]  # the figure numbers them
    st.plotly_chart(block_maps_figure(PT.normalise(maps, clean_value, corrupted_value).numpy(), labels, "Patching one block output at one position (clean → corrupted)"), config=chart_config(), key="text_block_maps")
    if st.toggle("Also patch every attention head (output, query, key, value, pattern) at all positions", key="text_heads"):
        heads = _head_maps(handle.name, clean, corrupted, int(a_ids[0]), int(o_ids[0]))
        st.plotly_chart(head_grid_figure(PT.normalise(heads, clean_value, corrupted_value).numpy(), "Patching one head at every position"), config=chart_config(), key="text_head_maps")
    st.subheader("Steer a head on the clean prompt")
    _steer_unit_panel(handle, clean, [f"L{layer}H{h}" for layer in range(handle.cfg.n_layers) for h in range(handle.cfg.n_heads)], "text_pl_steer_unit")
    session.sync_url(_steer_link("text_pl_steer_unit"))


def _token_choice(column, handle, label_text: str, candidates: list[int], key: str) -> int:
    """A token picked from the model's top guesses (shown with their whitespace), or typed."""
    picked = column.selectbox(label_text, candidates, key=key, format_func=lambda t: TP.token_name(handle, t))
    typed = column.text_input("…or type one", key=key + "_typed", label_visibility="collapsed", placeholder="…or type a token")
    ids = handle.tokenizer.encode(typed) if typed else []
    return int(ids[0]) if ids else int(picked)


SWAPS = ("k", "m", "value", "item", "result", "count")


def same_length_variant(tokenizer, text: str) -> str:
    """A first corrupted prompt: the clean one with its most used word swapped everywhere for
    another that keeps the number of tokens (the text itself when no swap does)."""
    length = len(tokenizer.encode(text))
    words = re.findall(r"[A-Za-z_]\w*", text)
    for word in sorted(dict.fromkeys(words), key=words.count, reverse=True):  # the most used name first
        for swap in SWAPS:
            if swap == word:
                continue
            variant = re.sub(rf"\b{re.escape(word)}\b", swap, text)
            if len(tokenizer.encode(variant)) == length:
                return variant
    return text


@st.cache_data(show_spinner="Patching every head…", max_entries=64)
def _head_maps(name: str, clean: tuple[int, ...], corrupted: tuple[int, ...], answer: int, other: int):
    handle = caches.cached_model(name)
    metric = PT.next_move_metric("logit difference", answer, other)
    return PT.act_patch_head_all_pos_every(handle, torch.tensor([corrupted]), torch.tensor([clean]), metric)


@st.cache_data(show_spinner="Patching every layer and position…", max_entries=64)
def _block_maps(name: str, clean: tuple[int, ...], corrupted: tuple[int, ...], answer: int, other: int):
    handle = caches.cached_model(name)
    metric = PT.next_move_metric("logit difference", answer, other)
    clean_t, corrupted_t = torch.tensor([clean]), torch.tensor([corrupted])
    maps = PT.act_patch_block_every(handle, corrupted_t, clean_t, metric)
    return maps, PT.run_metric(handle, clean_t, metric), PT.run_metric(handle, corrupted_t, metric)


# -- circuits -------------------------------------------------------------------------------------


def circuits() -> None:
    from ui.text_circuits import circuits as page

    page(_top("Circuits"))
