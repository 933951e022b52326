"""What a page tells the person: errors and notices (user text always shown as plain text, never
as Markdown or HTML), messages kept for the next page run, fixed-width text.
"""

from __future__ import annotations

import re

import streamlit as st


MESSAGES = "messages"


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+!|<>~$])")  # what can start a link, an image, emphasis, HTML or maths


def plain(text: object, limit: int = 400) -> str:
    """Text that may hold what a user typed or linked, made safe for Streamlit's markdown: cut to
    ``limit`` characters and every markdown character escaped, so links, images, emphasis and HTML
    show as the characters they are."""
    text = " ".join(str(text).split("\n"))  # one line: nothing typed can start a heading or a list
    if len(text) > limit:
        text = text[:limit] + f"… ({len(text) - limit} more characters)"
    # Markdown escapes do not stop bare-URL autolinks: an invisible zero-width space does.
    text = re.sub(r"(?i)(://|www\.|@)", lambda m: m.group(0)[0] + "\u200b" + m.group(0)[1:], text)
    return _MARKDOWN.sub(r"\\\1", text)


def error(text: object) -> None:
    """``st.error`` for messages that may contain user input (see ``plain``)."""
    st.error(plain(text))


def flash(kind: str, text: str) -> None:
    """A message shown on the next run (after a callback); always plain text."""
    st.session_state.setdefault(MESSAGES, []).append((kind, plain(text)))


def show_messages() -> None:
    for kind, text in st.session_state.pop(MESSAGES, []):
        getattr(st, kind)(text)


def monospace(text: str) -> None:
    """Text in a fixed-width font, line by line, without ``st.code``: its syntax highlighter is a
    1.5 MB script that took 0.3-0.4 s of a 2-core visitor's first page for three short lines."""
    lines = [line for line in text.splitlines() if line.strip()]
    if any("`" in line for line in lines):
        st.text(text)
    else:
        st.markdown("  \n".join(f"`{line}`" for line in lines))
