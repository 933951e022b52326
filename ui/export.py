"""What a result takes into a paper or a notebook: every chart's own download button (PNG or SVG,
chosen once in the sidebar), and the tables' CSV (Streamlit's table toolbar has it).

Charts keep plotly's mode bar with the download button only: zoom and pan would fight the board
clicks, and a logo is no use to anyone."""

from __future__ import annotations

import streamlit as st

FORMAT = "chart_format"  # session state: "png" or "svg"
FORMATS = {"png": "PNG", "svg": "SVG"}
_NOT_SHOWN = ["zoom2d", "pan2d", "select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d", "resetScale2d",
              "hoverClosestCartesian", "hoverCompareCartesian", "toggleSpikelines", "toggleHover", "resetViews"]


def chart_config(name: str = "boardlens") -> dict:
    """The ``config`` of every ``st.plotly_chart``: a download button in the chosen format (2x
    pixels for PNG), named after the chart."""
    fmt = st.session_state.get(FORMAT, "png")
    return {"displaylogo": False, "modeBarButtonsToRemove": _NOT_SHOWN,
            "toImageButtonOptions": {"format": fmt if fmt in FORMATS else "png", "filename": name, "scale": 2}}


def format_control() -> None:
    """The sidebar's choice of chart download format."""
    if st.session_state.get(FORMAT) not in FORMATS:
        st.session_state[FORMAT] = "png"
    st.sidebar.segmented_control("Save charts as", list(FORMATS), key=FORMAT, format_func=FORMATS.get, persist_state="session",
                                 help="Every chart has a camera button (top right, on hover) that saves it in this format. Tables: the download button above each table saves it as CSV.")
