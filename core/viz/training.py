"""A model card's learning curve: held-out top-1 legal rate (overall and per token kind) by step."""

from __future__ import annotations

import pandas as pd


def learning_curve_table(history: list[dict]) -> pd.DataFrame:
    """Steps as the index; columns: all tokens, then each token kind (for a small native chart)."""
    rows = {h["step"]: {"all tokens": h["top1_legal"], **h.get("by_kind", {})} for h in history}
    return pd.DataFrame.from_dict(rows, orient="index").sort_index()
