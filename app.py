"""BoardLens: look inside transformers that learned to play board games.

Run with ``streamlit run app.py``. The sidebar holds the model picker; the game and the model live
in session state and in the URL, so every page shows the same position and any view can be shared.
"""

import streamlit as st

import ui

st.set_page_config(page_title="BoardLens", page_icon="⚫", layout="wide")
ui.init_state()
pages = [
    st.Page("pages/board_player.py", title="Board player", icon="⚫", default=True),
    st.Page("pages/probe_viewer.py", title="Probe viewer", icon="🔎"),
    st.Page("pages/logit_lens.py", title="Logit lens", icon="🔬"),
    st.Page("pages/patching_lab.py", title="Patching lab", icon="🩹"),
]
page = st.navigation(pages)
ui.sidebar()
page.run()
