"""Ablate many SAE features at once: the top-k active at the position, or every feature whose best
board property is X, against random sets of as many features active there (one batch). Streamlit
side; the computation is ``core.interp.steering.sweep.ablate_set``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.interp.steering.sweep import ablate_set
from core.models.handle import ModelHandle
from ui import messages
from ui.steering_panel import active_here, token_name


def _set_row(name: str, result, handle: ModelHandle, top_name: str) -> dict:
    ratio = result.kl / max(float(result.random_kl.mean()), 1e-12)
    return {
        "ablated": name, "features": len(result.features), "KL (nats)": result.kl, f"P({top_name}) before": result.top_before, f"P({top_name}) after": result.top_after,
        f"random sets: KL (mean of {result.random_sets})": float(result.random_kl.mean()), f"random sets: P({top_name}) after": float(result.random_top_after.mean()),
        "× random": ratio,
    }


def feature_sets_panel(handle: ModelHandle, sae, hook: str, index, key: str, state=None, tokens: torch.Tensor | None = None, feature: int | None = None) -> dict[str, str]:
    """"How much of the move does this set of features carry": ablate the top-k features active
    at the current position, or every feature whose best board property is X, against random
    sets of as many active features (one batch). Returns its link parameters."""
    board = handle.kind != "text"
    if board:
        if not state.moves or state.is_over:
            return {}
        tokens = torch.from_numpy(handle.game.game_tokens(state.moves).astype(np.int64))
    params = st.query_params
    if not st.session_state.get(f"{key}_link_read"):
        st.session_state[f"{key}_link_read"] = True
        if params.get("ablate_k", "").isdigit() and 1 <= int(params["ablate_k"]) <= 64:
            st.session_state.update({f"{key}_on": True, f"{key}_k": int(params["ablate_k"])})
        elif "ablate_k" in params:
            messages.error(f"ablate_k={params['ablate_k']!r} in the link: a number of features from 1 to 64.")
    if not st.toggle("Ablate many features at once (the top-k active here; every feature labelled with a property)", key=f"{key}_on"):
        return {}
    c1, c2 = st.columns([1, 3])
    st.session_state.setdefault(f"{key}_k", 5)
    k = int(c1.number_input("k", 1, 64, key=f"{key}_k"))
    sae_key = f"{hook}/{id(sae)}"
    active = active_here(handle.name, sae_key, tuple(int(t) for t in tokens), -1, _handle=handle, _sae=sae, _hook=hook)
    top_name = token_name(handle, int(np.argmax(handle.forward(tokens[None])[0, -1])))
    rows = []
    if len(active):
        rows.append(_set_row(f"top {min(k, len(active))} active here", ablate_set(handle, tokens, sae, hook, [int(f) for f in active[:k]]), handle, top_name))
    labelled = getattr(index, "best_property", None)
    prop_link = {}
    if labelled is not None:
        names = index.property_names
        counts = np.bincount(labelled[labelled >= 0], minlength=len(names))
        choices = [int(p) for p in np.argsort(-counts) if counts[p] > 0]
        if choices:
            default = int(labelled[feature]) if feature is not None and labelled[feature] >= 0 else choices[0]
            linked = params.get("ablate_property")
            if linked is not None and f"{key}_prop_linked" not in st.session_state:
                if linked in names and names.index(linked) in choices:
                    st.session_state[f"{key}_prop"] = names.index(linked)
                else:
                    messages.error(f"ablate_property={linked!r} in the link: no feature of this SAE has that as its best property; showing {names[default]!r}.")
            st.session_state[f"{key}_prop_linked"] = True
            if st.session_state.get(f"{key}_prop") not in choices:
                st.session_state[f"{key}_prop"] = default if default in choices else choices[0]
            prop = c2.selectbox("Every feature whose best property is", choices, key=f"{key}_prop", format_func=lambda p: f"{names[p]} ({counts[p]} features)")
            members = [int(f) for f in np.flatnonzero(labelled == prop)]
            rows.append(_set_row(f"labelled “{names[prop]}”", ablate_set(handle, tokens, sae, hook, members, seed=1), handle, top_name))
            prop_link = {"ablate_property": names[prop]}
    if not rows:
        st.caption("No feature is active at this position.")
        return {"ablate_k": str(k)}
    table = pd.DataFrame(rows)
    st.dataframe(table, hide_index=True, width="stretch", column_config={c: st.column_config.NumberColumn(format="percent") for c in table.columns if c.startswith(("P(", "random sets: P("))} | {"× random": st.column_config.NumberColumn(format="%.1f×")})
    st.caption(f"Each set is zeroed at the last position with the SAE's error kept; its KL (before ‖ after, nats) beside the mean of 8 random sets of as many features active here "
               f"({len(active)} are). “× random”: how many times the random sets' KL. {top_name}: the top next token before any edit.")
    return {"ablate_k": str(k)} | prop_link
