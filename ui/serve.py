"""``python -m ui.serve [streamlit options]``: ``streamlit run app.py``, warmed before it listens.

``streamlit run app.py`` imports torch, TransformerLens and BoardLens, and loads the default model,
when the first visitor's session runs: that visitor waits for all of it (~10 s in the container),
and a host that sleeps when idle (a Hugging Face Space) pays it again on every wake-up. Here the
same imports and the default model's load happen first, in the server's process, into the cache
every session reads (``caches.cached_model``); the server starts listening after, so its health check
answers only when a first page is as quick as any later one. The container runs this command."""

from __future__ import annotations

import sys
import time
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app.py"


def warm() -> float:
    """Import what every page imports and load the default model into the shared cache; the
    seconds it took."""
    t0 = time.perf_counter()
    from ui import caches, sae_caches, shell  # noqa: F401 - what every page imports: streamlit, torch, TransformerLens, core
    from core.models.registry import default_model_name

    from core.interp.shared.predictions import predict

    handle = caches.cached_model(default_model_name())  # st.cache_resource: the cache the sessions read
    game = handle.game
    predict(handle, game.state(tuple(int(m) for m in game.random_games(1, seed=0)[0][:8] if m >= 0)))  # the board player's work once: first-call set-up of its kernels
    caches._import_slow_libraries()  # what the SAE pages need (sae_lens)
    return time.perf_counter() - t0


def main() -> None:
    seconds = warm()
    print(f"BoardLens warmed in {seconds:.1f} s; starting the server", flush=True)
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *sys.argv[1:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
