"""The Streamlit seam: pages import these modules; ``core`` never does.

- ``session``: the game, the model and the page settings of one browser session, mirrored into
  the link; messages;
- ``caches``: models, predictions, probes and corpus-wide results, shared by every session;
- ``sae_caches``: SAEs and their feature indexes;
- ``shell``: navigation, sidebar and model card, and the checks a page makes before it serves;
- ``panels``, ``unit_dashboard``, ``steering_panel``, ``feature_sets``, ``corpus``, ``skill_panel``, ``export``: page pieces that
  several pages share; ``text_pages`` and ``text_panels``: the pages of a text model;
- ``serve``: the server command that warms the caches before it listens.
"""
