"""BoardLens: look inside transformers that learned to play board games.

Run with ``streamlit run app.py``. The sidebar holds the model picker; the game and the model live
in session state and in the URL, so every page shows the same position and any view can be shared.
"""

import streamlit as st

from ui import caches
from ui import session
from ui import shell
from core.memory import freeze_long_lived, release_free_memory

st.set_page_config(page_title="BoardLens", page_icon="⚫", layout="wide")
session.init_state()
page = st.navigation(shell.app_pages())
st.session_state[shell.SHELL] = True
shell.sidebar()
try:
    page.run()
finally:
    caches.warm_up_in_background()  # after the first page: it never delays what the visitor asked for
    release_free_memory()  # heavy temporaries of this run go back to the OS, not to the next run
    freeze_long_lived(page.title)  # once per page: the collector stops walking what lives as long as the server
