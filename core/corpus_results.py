"""The corpus-wide results the pages open on, and the command that stores them for the bundled models.

Each is computed on random legal games, or on a researcher's own games (a ``GameCorpus``): then
its name and key carry the file's digest, it is kept in the cache only, and it says which games it
read. Three kinds (see ``core.precomputed`` for how they are stored and when a copy is stale):

- ``lens_legality``: the logit lens's top-1 legal rate and illegal mass by layer over held-out
  games (the lens page's first chart);
- ``neurons``: one layer's MLP neurons as a ``FeatureIndex`` plus their board correlations (the
  lens page's neuron view);
- ``sae_index``: a bundled SAE's feature index (the SAE browser).

``python -m core.corpus_results build [MODEL ...]`` writes them into ``assets/precomputed/``;
``python -m core.corpus_results check`` says which are missing or stale (exit 1 if any).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core import precomputed as S
from core.game_corpus import GameCorpus, corpus_games, corpus_name, corpus_tag
from core.interp.lens import logit_lens as L
from core.interp.lens.neurons import neuron_index
from core.interp.sae.features import build_index
from core.interp.shared.unit_index import FeatureIndex
from core.models.handle import ModelHandle
from core.words import count

Progress = Callable[[str, float], None]
LENS_SEED = 4242  # held-out games of the lens legality chart (not training's, not the browser's)


def lens_games(handle: ModelHandle) -> int:
    """About 30k positions: 500 Othello games, ~120 chess games (a context four times longer)."""
    return min(500, max(50, 30_000 // handle.game.n_ctx))


@dataclass(frozen=True)
class Result:
    """One stored result: how to key it, compute it, and turn it into files and back."""

    kind: str
    name: str  # file name inside the model's folder
    key: dict
    build: Callable[[Progress | None], object]
    split: Callable[[object], tuple[dict, dict[str, np.ndarray]]]
    join: Callable[[dict, dict[str, np.ndarray]], object]
    what: str  # for people: "the lens legality chart over 500 games"


def _on(corpus: GameCorpus | None) -> tuple[str, dict]:
    """A result's name suffix and extra key fields for ``corpus`` (none for random games, so the
    shipped results keep their names)."""
    return ("", {}) if corpus is None else (f"@{corpus_tag(corpus)}", {"corpus": corpus_tag(corpus)})


def lens_legality_result(handle: ModelHandle, corpus: GameCorpus | None = None) -> Result:
    games = corpus_games(handle.game, corpus, lens_games(handle), LENS_SEED) if corpus is not None else None
    n = lens_games(handle) if games is None else len(games)
    suffix, extra = _on(corpus)

    def build(progress: Progress | None) -> dict:
        if progress:
            progress(f"logit lens over {n} games", 0.0)
        return L.lens_legality(handle, handle.game.random_games(n, seed=LENS_SEED) if games is None else games)

    where = f"{count(n, 'held-out game')}" if corpus is None else f"{count(n, 'game')} of {corpus.name}"
    return Result(
        "lens_legality", f"lens_legality{suffix}", S.make_key("lens_legality", handle.model, games=n, seed=LENS_SEED, **extra), build,
        lambda r: (r, {}), lambda meta, arrays: meta, f"the lens legality chart over {where}",
    )


def neurons_result(handle: ModelHandle, layer: int, corpus: GameCorpus | None = None) -> Result:
    from core.interp.lens.neurons import NEURON_SEED, neuron_games

    suffix, extra = _on(corpus)

    def build(progress: Progress | None):
        if progress:
            progress(f"layer {layer}'s neurons over {corpus_name(corpus)}", 0.0)
        games = None if corpus is None else corpus_games(handle.game, corpus, neuron_games(handle.game), NEURON_SEED)
        return neuron_index(handle, layer, games=games)

    def split(result):
        index, corr = result
        meta, arrays = S.split_dataclass(index)
        if corr is not None:
            arrays["corr"] = corr
        return meta, arrays

    def join(meta, arrays):
        corr = arrays.pop("corr", None)
        return S.join_dataclass(FeatureIndex, meta, arrays), corr

    over = "" if corpus is None else f" over {corpus.name}"
    return Result("neurons", f"neurons_L{layer}{suffix}", S.make_key("neurons", handle.model, layer=layer, **extra), build, split, join, f"layer {layer}'s neuron index{over}")


def sae_index_result(handle: ModelHandle, sae, hook: str, sae_name: str, corpus: GameCorpus | None = None) -> Result:
    from core.interp.sae.features import BROWSER_SEED, index_games

    suffix, extra = _on(corpus)

    def build(progress: Progress | None) -> FeatureIndex:
        games = None if corpus is None else corpus_games(handle.game, corpus, index_games(handle.game), BROWSER_SEED)
        return build_index(handle, sae, hook, progress=progress, games=games)

    over = "" if corpus is None else f" over {corpus.name}"
    return Result(
        "sae_index", f"sae_index-{sae_name}{suffix}", S.make_key("sae_index", handle.model, sae, hook=hook, **extra), build,
        S.split_dataclass, lambda meta, arrays: S.join_dataclass(FeatureIndex, meta, arrays), f"the feature index of SAE {sae_name}{over}",
    )


def token_index_result(handle: ModelHandle, sae, hook: str, sae_name: str, windows: np.ndarray, where: str) -> Result:
    """A text model's SAE feature index over ``windows`` of held-out text (keyed by their digest)."""
    import hashlib

    from core.interp.sae.token_sae import TokenIndex, build_token_index

    digest = hashlib.sha256(np.ascontiguousarray(windows, dtype=np.int64).tobytes()).hexdigest()[:16]

    def build(progress: Progress | None) -> TokenIndex:
        return build_token_index(handle, sae, hook, windows, progress=progress)

    return Result(
        "token_index", f"token_index-{sae_name}", S.make_key("token_index", handle.model, sae, hook=hook, windows=digest, shape=list(windows.shape)), build,
        S.split_dataclass, lambda meta, arrays: S.join_dataclass(TokenIndex, meta, arrays), f"the feature index of SAE {sae_name} over {where}",
    )


def load(handle: ModelHandle, result: Result) -> tuple[object | None, str]:
    """``(the stored result or None, where it came from or why none was usable)``."""
    found, where = S.lookup(handle.name, result.name, result.key)
    if found is None:
        return None, where
    try:
        return result.join(*found), where
    except (S.StoreError, TypeError, ValueError) as exc:
        return None, f"{result.name}: {exc}"


def load_or_build(handle: ModelHandle, result: Result, progress: Progress | None = None, save_to=None) -> tuple[object, str]:
    """The stored result, or compute it and keep it in the cache (or ``save_to``): ``(result,
    where)`` with ``where`` "shipped", "cache" or "built (…why…)"."""
    value, where = load(handle, result)
    if value is not None:
        return value, where
    value = result.build(progress)
    store(handle, result, value, save_to)
    return value, f"built ({where})"


def store(handle: ModelHandle, result: Result, value, folder=None) -> None:
    meta, arrays = result.split(value)
    try:
        S.write(folder or S.cache_root() / handle.name, result.name, result.key, meta, arrays)
    except OSError:
        pass  # a read-only disk: the result still serves this process


# -- what the pages open on, per bundled model -------------------------------------------------------
def neuron_home_layer(handle: ModelHandle) -> int:
    """The layer whose neurons are shipped and where the neuron view opens: the last one (its
    neurons write straight into the logits; the top neuron by direct effect is there at 40-70 % of
    positions of the bundled models). Every layer is ~5-20 MB of index, so the others are computed
    on first use and cached."""
    return handle.cfg.n_layers - 1


def shipped_results(handle: ModelHandle) -> list[Result]:
    """Everything a page builds on its first visit for this model: the lens legality chart, the
    neuron index of the layer the neuron view opens on and every bundled SAE's feature index."""
    from core.interp.sae.store import list_saes, load_sae

    if handle.kind == "text":  # its SAEs' feature indexes over the windows the browser reads
        from core.text.shard import index_windows

        windows, where = index_windows(handle)
        return [token_index_result(handle, load_sae(e.folder, d_in=handle.hook_width(e.hook)), e.hook, e.name, windows, where) for e in list_saes(handle.name)] if windows is not None else []
    out = [lens_legality_result(handle), neurons_result(handle, neuron_home_layer(handle))]
    for entry in list_saes(handle.name):
        sae = load_sae(entry.folder, d_in=handle.hook_width(entry.hook))
        out.append(sae_index_result(handle, sae, entry.hook, entry.name))
    return out


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from core.models.registry import load_model, list_models

    parser = argparse.ArgumentParser(prog="python -m core.corpus_results", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["build", "check"], help="build: store what is missing or stale; check: list it (exit 1 if any)")
    parser.add_argument("models", nargs="*", help="bundled model names (default: every bundled model)")
    args = parser.parse_args(argv)
    names = args.models or [spec.name for spec in list_models() if spec.source == "bundled"]
    todo = []
    for name in names:
        handle = load_model(name)
        for result in shipped_results(handle):
            try:
                fresh = S.read(S.SHIPPED / name, result.name, result.key) is not None
                where = "stale" if not fresh and (S.SHIPPED / name / f"{result.name}.json").is_file() else "missing"
            except S.StoreError as exc:
                fresh, where = False, str(exc)
            if not fresh:
                todo.append((handle, result, where))
    if args.action == "check":
        for handle, result, where in todo:
            print(f"{handle.name}: {result.what} ({result.name}): {where}")
        print(f"{len(todo)} stored result(s) missing or stale" if todo else "every shipped result is present and fresh")
        return 1 if todo else 0
    bar = tqdm(todo, desc="corpus results", unit="result")
    for handle, result, where in bar:
        bar.set_postfix_str(f"{handle.name}: {result.name} ({where})")
        t0 = time.perf_counter()
        value = result.build(None)
        store(handle, result, value, S.SHIPPED / handle.name)
        bar.write(f"{handle.name}: {result.what} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
