"""PGN-character chess (Karvonen's ChessGPT layout) on every page: SANs, targets, move lens,
whole-move attribution and patching, checked against python-chess and TransformerLens."""

from __future__ import annotations

import chess
import numpy as np
import pytest
import torch
from transformer_lens import patching as tl_patching

from core.games.chess import rules as C
from core.games.chess.san import legal_sans
from core.games.chess.tokens import CHAR_KIND_NAMES
from core.games.registry import get_game
from core.interp.lens import logit_lens as L
from core.interp.shared import position_run
from core.interp.lens import move_lens as ML
from core.interp.patching import sweeps as PT
from core.interp.shared.predictions import game_tokens, predict
from core.models import registry
from tests.nanogpt_reference import NanoGPT
from tests.test_chess_hub_models import write_chessgpt_hub_cache
from tests.rounding import forward_bound, metric_bound, parts_bound

SPECIAL_FENS = [
    "r3k2r/pppq1ppp/2n2n2/3pp3/1b1PP1b1/2N2N2/PPPQBPPP/R3K2R w KQkq - 0 1",  # both castlings
    "rnbqkbnr/ppp2ppp/8/3pP3/8/8/PPPP1PPP/RNBQKBNR w KQkq d6 0 3",  # en passant
    "8/1P4k1/8/8/8/8/6K1/8 w - - 0 1",  # promotions, one with check
    "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1",  # Ra8#
    "4k3/8/8/8/8/8/8/R3K2R w KQ - 0 1",  # castling with check
    "3k4/8/8/8/1N3N2/8/8/1N3N1K w - - 0 1",  # knights needing file, rank and square disambiguation
    "4k3/8/8/3Pp3/8/8/8/4K2q w - e6 0 1",  # en passant that discovers nothing, king in check
    "k7/8/8/8/8/8/4Q3/4K2Q w - - 0 1",  # queens on a file and a diagonal
]


@pytest.fixture(scope="module")
def pgn_handle(tmp_path_factory):
    """Karvonen's ChessGPT layout with random weights, from an offline hub cache."""
    import huggingface_hub.constants as hub_constants

    cache = tmp_path_factory.mktemp("hub")
    torch.manual_seed(3)
    write_chessgpt_hub_cache(cache, NanoGPT(vocab_size=32, block_size=256, n_layer=2, n_head=4, n_embd=32).eval())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield registry.load_model("chess-gpt-karvonen")


def test_every_legal_san_equals_python_chess():
    boards = [chess.Board(f) for f in SPECIAL_FENS]
    for row in C.random_games(40, 400, seed=11):
        board = chess.Board()
        for code in row[row >= 0]:
            boards.append(board.copy(stack=False))
            board.push(C.decode_move(int(code)))
    n = 0
    for board in boards:
        ours = legal_sans(board)
        assert [m for m, _ in ours] == list(board.legal_moves)
        assert [san for _, san in ours] == [board.san(m) for m in board.legal_moves], board.fen()
        n += len(ours)
    assert n > 100_000
    assert any("#" in s for b in boards for _, s in legal_sans(b)) and any("=Q+" in s for b in boards for _, s in legal_sans(b))


def _reference_weights(moves: list[int]) -> tuple[str, np.ndarray]:
    """The random player's next-character distribution, spelled out: the text is ply after ply,
    each ply its separator and a uniformly random legal SAN, so at every position the next
    character's probability is the share of the continuations that agree with the text so far.
    Where the played SAN ends, a longer SAN of the same ply ("O-O" -> "O-O-O") is still open."""
    game = get_game("chess", 8, "pgn-chars", 4096)
    vocab = game.tokenizer.index
    board, text, rows = chess.Board(), ";", []
    done, open_longer = "", []
    for i, code in enumerate(moves):
        sep = game.tokenizer.separator(i)
        # (string, weight): this ply's continuations share the weight of "the last SAN is complete".
        options = [(s[len(done):], 1.0) for s in open_longer] + [(sep + board.san(m), 1.0 / board.legal_moves.count()) for m in board.legal_moves]
        played = sep + board.san(C.decode_move(code))
        for j, c in enumerate(played):
            row = np.zeros(game.d_vocab)
            for option, weight in options:
                if len(option) > j and option[:j] == played[:j]:
                    row[vocab[option[j]]] += weight
            rows.append(row / row.sum())
            options = [(o, w * (1.0 if j >= len(sep) else 1.0)) for o, w in options if len(o) > j and o[j] == c]
            text += c
        done = board.san(C.decode_move(code))
        open_longer = [board.san(m) for m in board.legal_moves if board.san(m).startswith(done) and len(board.san(m)) > len(done)]
        board.push(C.decode_move(code))
    return text, np.array(rows)


def test_pgn_targets_equal_a_spelled_out_reference():
    """Target weights are counts of legal continuations normalised in float64 on both sides: equal
    to a few float64 ulps (1e-6 is far above them, and a wrong count moves a weight by 1e-2 or
    more)."""
    game = get_game("chess", 8, "pgn-chars", 4096)
    board = chess.Board(SPECIAL_FENS[0])
    castles = [C.encode_move(m) for m in board.legal_moves if board.is_castling(m)]
    assert len(castles) == 2
    games = [C.parse_moves("e4 e5 Nf3 Nc6 Bc4 Nf6 O-O Be7 Re1 O-O")] + [list(row[row >= 0][:60]) for row in C.random_games(6, 200, seed=5)]
    for moves in games:
        text, weights, kinds, _ = game.tokenizer.records([int(m) for m in moves])
        ref_text, ref = _reference_weights([int(m) for m in moves])
        assert text.startswith(ref_text)
        np.testing.assert_allclose(weights[: len(ref)] / weights[: len(ref)].sum(-1, keepdims=True), ref, atol=1e-6)
        assert kinds[: len(ref)].max() <= 2


def test_the_game_text_alone_equals_the_records_text():
    """``game_text`` (the model input) skips the per-character weights: the same text, wherever a
    game ends (mate, stalemate, a draw, a repetition) or the context cuts it."""
    game = get_game("chess", 8, "pgn-chars", 4096)
    tok = game.tokenizer
    shuffle = [C.encode_move(chess.Move.from_uci(u)) for u in "g1f3 g8f6 f3g1 f6g8 g1f3 g8f6 f3g1 f6g8 e2e4 e7e5".split()]  # threefold repetition, then moves the game never reaches
    games = [shuffle, C.parse_moves("f3 e5 g4 Qh4#")] + [[int(m) for m in row if m >= 0] for row in C.random_games(40, 400, seed=11)]
    for moves in games:
        for limit in (None, 1, 40, 400):
            assert tok._game_text.__wrapped__(tok, tuple(moves), limit) == tok.records(list(moves), limit=limit)[0]
    assert tok.game_text(shuffle).endswith("4.Ng1 Ng8")
    with pytest.raises(ValueError, match="illegal move"):
        tok.game_text(C.parse_moves("e4 e5") + [C.encode_move(chess.Move.from_uci("e1e3"))])


def test_move_positions_are_where_each_board_is_complete():
    game = get_game("chess", 8, "pgn-chars", 64)
    moves = C.parse_moves("e4 e5 Nf3 Nc6 Bb5 a6 Ba4 Nf6 O-O Be7 Re1 b5 Bb3 d6 c3 O-O")
    text = game.tokenizer.records(moves)[0]
    positions = game.move_positions(np.array([moves]))[0]
    assert "".join(text[p] for p in positions[:6]) == " . . ."
    assert positions.max() < 64 and (positions[positions >= 0] < 64).all() and positions[-1] == -1  # past the context
    assert game.fit_moves(moves) == tuple(moves[: int((positions >= 0).sum())])
    mate = C.parse_moves("f3 e5 g4 Qh4#")
    assert game.move_positions(np.array([mate]))[0, -1] == -1  # no separator follows the last move
    assert game.token_context(moves, 3, after=13) == (";1.e4 e5 2.Nf3 Nc6 3", ".", "Bb5 a6 4.Ba4 ")
    assert game.token_context(moves, 2, before=5, after=4) == ("2.Nf3", " ", "Nc6 ")


def test_move_lens_is_the_board_players_distribution_and_attribution_adds_up(pgn_handle):
    """The move lens's last layer is the board player's distribution: probabilities from the same
    logits through another product of character probabilities, within 1e-5 (a probability moves
    by at most its log-probabilities' rounding, ~1e-6 here). Lens points without the cached run
    and the softmax of the last logits are the same kernels on the same inputs (1e-6 is ~16 u).
    Whole-move DLA adds up within the logits' float32 rounding per character (``forward_bound``)
    and that of summing the parts in another order (``parts_bound``)."""
    handle, game = pgn_handle, pgn_handle.game
    state = game.state(C.parse_moves("e4 e5 Nf3 Nc6 Bb5 a6 Ba4 Nf6 O-O"))
    run = position_run.run_position(handle, state.moves)
    lens = ML.move_lens(handle, state, incl_mid=True, run=run)
    assert lens.labels[-1] == "L1 mlp" and len(lens.labels) == 5 and set(lens.moves) == set(state.legal_moves)
    pred = predict(handle, state)
    final = dict(zip(lens.moves, lens.probs[-1]))
    assert max(abs(final[m] - p) for m, p in pred.move_probs.items()) <= 1e-5
    assert np.allclose(ML.move_lens(handle, state).logp, lens.logp[[0, 2, 4]], atol=1e-6)  # without run, without mid points
    frm, to = lens.marginals(game)
    assert np.allclose(frm.sum(-1), lens.legal_mass) and np.allclose(to.sum(-1), lens.legal_mass)
    np.testing.assert_allclose(lens.next_token[-1], run.logits[0, -1].softmax(-1).numpy(), atol=1e-6)
    # Whole-move DLA: the parts add up to the summed logits of the move's characters and space.
    move = C.parse_moves("Be7", state.moves)[0]
    attr = ML.move_attribution(handle, state, move)
    prefix, toks = ML.move_tokens_after(handle, state, move)
    assert "".join(game.vocab[t] for t in toks) == "Be7 "
    logits = handle.forward(torch.from_numpy(np.concatenate([prefix, toks[:-1]])[None]))[0]
    summed = sum(float(logits[len(prefix) - 1 + j, t]) for j, t in enumerate(toks))
    bound = len(toks) * forward_bound(handle.model, torch.from_numpy(np.concatenate([prefix, toks[:-1]])[None]))  # one logit's rounding per character summed
    assert abs(float(attr.logits[0]) - summed) <= bound
    assert abs(float(attr.dla[:, 0].sum() + attr.bias[0]) - summed) <= bound + parts_bound(attr.dla[:, :1])
    first = L.attribute(handle, state.moves, run=run)
    assert abs(float(first.dla[:, toks[0]].sum() + first.bias[toks[0]] - first.logits[toks[0]])) <= parts_bound(first.dla[:, toks[0] : toks[0] + 1])
    top = L.top_neurons(attr, 0, k=3)
    assert len(top) == 3 and abs(top[0]["direct effect"]) >= abs(top[-1]["direct effect"])
    with pytest.raises(ValueError, match="not a legal move"):
        ML.move_tokens_after(handle, state, C.parse_moves("e4")[0])


def test_lens_legality_splits_positions_by_character_kind(pgn_handle):
    handle, game = pgn_handle, pgn_handle.game
    result = L.lens_legality(handle, game.random_games(6, seed=2))
    assert set(result["by_kind"]) <= set(CHAR_KIND_NAMES) and {"piece letter", "file", "rank", "space", "move number"} <= set(result["by_kind"])
    assert sum(result["kind_positions"].values()) == result["positions"]
    batch = game.token_batch(game.random_games(2, seed=2))
    names, kinds = game.legality_kinds(batch)
    text = "".join(game.vocab[t] for t in batch.tokens[0])
    for p in range(40):
        kind = names[kinds[0, p]]
        nxt = text[p + 1]
        assert (kind == "space") == (nxt == " ") and (kind == "piece letter") <= (nxt in "NBRQK")
    legal_gap = L.legal_gap_by_position(handle, tuple(int(m) for m in game.random_games(1, seed=4)[0][:6]))
    assert np.isfinite(legal_gap[1]).all() and np.abs(legal_gap[1]).max() > 0  # characters are candidates


def test_pgn_patching_equals_transformer_lens(pgn_handle):
    """Every patched site equals TransformerLens's within the metric's float32 rounding
    (``tests.rounding.metric_bound``), for both metrics; the whole-move metric is the board
    player's log-probability of the move within the same bound."""
    handle, game = pgn_handle, pgn_handle.game
    moves = tuple(C.parse_moves("e4 e5 Nf3 Nc6 Bb5 a6 Ba4 Nf6"))
    # Nf3 -> Nh3 keeps three characters; the rest replays.
    clean_moves, corrupted_moves, dropped = PT.corrupt_game(moves, 2, C.parse_moves("Nh3", moves[:2])[0], game)
    assert dropped == 0 and PT.why_cut(moves, corrupted_moves, game) == ""
    with pytest.raises(ValueError, match="another number of tokens"):
        PT.corrupt_game(moves, 2, C.parse_moves("a3", moves[:2])[0], game)  # two characters, not three
    target = C.parse_moves("O-O", clean_moves)[0]
    tail = tuple(game.move_tokens(target, clean_moves)) + (game.vocab.index(" "),)
    clean, corrupted = (PT.with_tail(game_tokens(g, game), tail) for g in (clean_moves, corrupted_moves))
    assert clean.shape == corrupted.shape
    for metric in (PT.next_move_metric("whole-move log-prob", 0, 0, tail), PT.next_move_metric("logit difference", game.vocab.index("O"), game.vocab.index("B"))):
        ours = PT.act_patch_block_every(handle, corrupted, clean, metric)
        heads = PT.act_patch_head_all_pos_every(handle, corrupted, clean, metric)
        with handle.session() as model:
            _, clean_cache = model.run_with_cache(clean)
            theirs = tl_patching.get_act_patch_block_every(model, corrupted, clean_cache, metric)
            theirs_heads = tl_patching.get_act_patch_attn_head_all_pos_every(model, corrupted, clean_cache, metric)
        bound = metric_bound(handle.model, clean, metric)  # float32 rounding of the metric (tests/rounding.py)
        assert (ours - theirs).abs().max().item() <= bound and (heads - theirs_heads).abs().max().item() <= bound and ours.std() > 0
    whole = PT.next_move_metric("whole-move log-prob", 0, 0, tail)
    with torch.no_grad():
        direct = float(whole(handle.forward(clean)))
    assert np.isclose(np.log(predict(handle, game.state(clean_moves)).move_probs[target]), direct, atol=metric_bound(handle.model, clean, whole))  # the board player's rows pass against a plain forward


def test_a_later_move_that_changes_its_length_cuts_the_corrupted_game():
    game = get_game("chess", 8, "pgn-chars", 256)
    moves = tuple(C.parse_moves("g4 c6 d3 Qa5+ c3"))
    # 1.b4 instead of 1.g4 blocks the diagonal: 2...Qa5 is no longer check, and "Qa5" is one
    # character shorter than "Qa5+", so the games stop lining up there.
    clean_moves, corrupted_moves, dropped = PT.corrupt_game(moves, 0, C.parse_moves("b4")[0], game)
    assert len(corrupted_moves) == 3 and dropped == 2 and clean_moves == moves[:3]
    assert PT.why_cut(moves, corrupted_moves, game) == "move 4 (Qa5+) is written with another number of tokens after the change, so the two games would no longer line up"
    moves = tuple(C.parse_moves("e4 d5 exd5"))
    clean_moves, corrupted_moves, dropped = PT.corrupt_game(moves, 1, C.parse_moves("d6", moves[:1])[0], game)
    assert dropped == 1 and PT.why_cut(moves, corrupted_moves, game) == "move 3 (exd5) is illegal after the change"
    uci = get_game("chess", 8, "uci-squares", 256)  # square tokens: a check does not change a move's tokens
    assert PT.corrupt_game(tuple(C.parse_moves("g4 c6 d3 Qa5+ c3")), 0, C.parse_moves("b4")[0], uci)[2] == 0


PAGES = ["pages/board_player.py", "pages/probe_viewer.py", "pages/logit_lens.py", "pages/sae_browser.py", "pages/patching_lab.py"]
# The lens: its first section (legality, a board per read-out of the 2-layer fixture, the character lens).
CHARTS = {"pages/board_player.py": 2, "pages/probe_viewer.py": 0, "pages/logit_lens.py": 5, "pages/sae_browser.py": 0, "pages/patching_lab.py": 4}


def write_gpt2_pgn_cache(cache, reference, activation: str | None = "gelu_new") -> None:
    """``adamkarvonen/8LayerChessGPT2``'s layout: config.json + model.safetensors, no tokenizer file."""
    import json

    from safetensors.torch import save_file

    from core.models.hf_gpt2 import CHESS_GPT2_PGN_REPO
    from tests.test_chess_hub_models import COMMIT

    config = dict(reference.config)
    if activation is None:
        config.pop("activation_function")
    else:
        config["activation_function"] = activation
    snapshot = cache / ("models--" + CHESS_GPT2_PGN_REPO.replace("/", "--")) / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(config))
    save_file({k: v.detach().contiguous() for k, v in reference.state_dict().items()}, str(snapshot / "model.safetensors"))
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text(COMMIT)


@pytest.fixture(scope="module", params=["chess-gpt-karvonen", "chess-gpt2-karvonen"])
def pgn_hub_model(request, tmp_path_factory):
    """A hub cache holding one of the two published ChessGPT layouts (random weights): its name."""
    import huggingface_hub.constants as hub_constants

    from tests import gpt2_reference

    cache = tmp_path_factory.mktemp("hub")
    torch.manual_seed(8)
    if request.param == "chess-gpt-karvonen":
        write_chessgpt_hub_cache(cache, NanoGPT(vocab_size=32, block_size=256, n_layer=2, n_head=4, n_embd=32).eval())
    else:
        write_gpt2_pgn_cache(cache, gpt2_reference.GPT2(vocab=32, n_positions=256, n_layer=2, n_head=4, n_embd=32).eval())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
        mp.setenv("HF_HUB_OFFLINE", "1")
        from ui.caches import cached_model

        cached_model.clear()  # the other layout's model may be cached under another cache dir
        yield request.param
        cached_model.clear()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_serves_a_pgn_model_plain_with_a_game_and_with_a_bad_link(pgn_hub_model, page):
    from tests.test_board_player_page import open_page

    game = get_game("chess", 8, "pgn-chars", 256)
    moves = game.url_moves(C.parse_moves("e4 e5 Nf3 Nc6 Bb5 a6 Ba4 Nf6 O-O"))
    for params, n_moves in (({}, 0), ({"moves": moves}, 9), ({"moves": moves + "zz", "feature": "x", "target": "?", "neuron": "L9N9"}, 9)):  # a bad link keeps its legal start
        at = open_page(page, model=pgn_hub_model, **params)
        assert not any("does not serve" in i.value for i in at.info), page
        assert len(at.session_state["moves"]) == n_moves
        errors = [e.value for e in at.error]
        if "zz" in params.get("moves", ""):
            assert errors and all("zz" in e or "move" in e.lower() for e in errors[:1]), errors
        else:
            assert not errors, errors
            if n_moves:  # no probes or SAE yet: those pages offer to train them
                assert len(at.get("plotly_chart")) >= CHARTS[page], page
                assert page not in ("pages/probe_viewer.py", "pages/sae_browser.py") or any("train" in e.label.lower() for e in at.expander)


@pytest.mark.parametrize("activation", ["gelu_new", "gelu", None])
def test_the_gpt2_copy_of_chessgpt_loads_offline_with_its_activation_on_the_card(tmp_path, monkeypatch, activation):
    """``adamkarvonen/8LayerChessGPT2``: a GPT2LMHeadModel (config.json + model.safetensors, 32
    characters, no tokenizer file) through TransformerLens's GPT-2 conversion; its MLP uses the
    activation config.json names (transformers' gelu_new when it names none)."""
    import huggingface_hub.constants as hub_constants

    from tests import gpt2_reference

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(registry.ModelLoadError, match="network access"):
        registry.load_model("chess-gpt2-karvonen")
    torch.manual_seed(6)
    reference = gpt2_reference.GPT2(vocab=32, n_positions=96, n_layer=2, n_head=4, n_embd=32).eval()
    if activation == "gelu":  # the reference computes what the config says
        for block in reference.transformer.h:
            block.mlp.forward = lambda x, mlp=block.mlp: mlp.c_proj(torch.nn.functional.gelu(mlp.c_fc(x)))
    write_gpt2_pgn_cache(tmp_path, reference, activation)
    handle = registry.load_model("chess-gpt2-karvonen")
    game = handle.game
    assert game.key == "chess-pgn-chars" and game.n_ctx == 96
    assert handle.info.card["activation"].startswith("activation: exact GELU" if activation == "gelu" else "activation: 'gelu_new'")
    tokens = torch.from_numpy(game.batch_tokens(game.random_games(3, seed=1)))
    with torch.no_grad():
        expected = reference(tokens)
    assert (handle.forward(tokens) - expected).abs().max().item() <= forward_bound(handle.model, tokens)  # float32 rounding (tests/rounding.py)
    assert registry.hub_spec("chess-gpt2-karvonen").needs_network is False  # listed as available


def _naive_greedy(handle, prefix: list[int], steps: int = 8) -> list[int]:
    tokens, out = list(prefix), []
    for _ in range(steps):
        nxt = int(handle.forward(torch.tensor([tokens]))[0, -1].argmax())
        out.append(nxt)
        tokens.append(nxt)
    return out


def test_greedy_moves_from_cut_caches_equal_step_by_step_decoding(pgn_handle):
    from core.interp.shared.move_legality import greedy_after, whole_move_legality

    handle, game = pgn_handle, pgn_handle.game
    games = game.random_games(3, seed=9)
    tokens = torch.from_numpy(game.batch_tokens(games))
    rows = [(g, p) for g in range(3) for p in (2, 9, 41, 120)]
    fast = greedy_after(handle, tokens, rows, rows_per_pass=5, games_per_pass=2)  # rows of several games and lengths in one batch
    for (g, p), row in zip(rows, fast):
        assert list(row) == _naive_greedy(handle, tokens[g, : p + 1].tolist())
    result = whole_move_legality(handle, games)
    assert result["positions"] > 60 and 0.0 <= result["whole_move_exact"] <= result["whole_move_legal"] <= result["first_token_legal"] <= 1.0


def test_python_chess_judges_a_written_move_as_push_san_would():
    game = get_game("chess", 8, "pgn-chars", 256)
    moves = C.parse_moves("e4 e5 Qh5 Nc6 Bc4 Nf6")
    assert "Qxf7#" in game.legal_move_texts(moves)
    assert all(game.accepts_move_text(moves, t) for t in ("Qxf7#", "Qxf7", "Qxf7+", "Qhxf7", "Nf3", "Nf3+"))
    assert not any(game.accepts_move_text(moves, t) for t in ("Qxf8", "Ke3", "--", "O-O-O", "", "zz", "Nf3 x"))


def test_piece_edits_on_a_pgn_model_write_a_move_under_the_edit(pgn_handle):
    """Probe readings from the cached run and from a pass of their own: the same kernels on the
    same inputs, probabilities of order 1 within 1e-6 (~16 u)."""
    from core.interp.probes import move_edits as ME
    from core.interp.probes import linear_probes as P
    from core.interp.probes.interventions import make_batch

    handle, game = pgn_handle, pgn_handle.game
    probes = P.train_probes(handle, "piece", ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"], train_games=12, test_games=4)
    by_layer = {p.meta["layer"]: p for p in probes.values()}
    moves = tuple(C.parse_moves("e4 e5 Nf3 Nc6 Bb5 a6"))
    batch = make_batch([moves], [chess.B5], [6], game)
    readings: dict = {}
    assert ME.greedy_moves(handle, by_layer, batch, [0, 1], 0.0) == [_decoded(game, _naive_greedy(handle, list(game.game_tokens(moves))))]
    edited = ME.greedy_moves(handle, by_layer, batch, [0, 1], 4.0, readings=readings)
    assert all(after[0] == 6 for _, after in readings.values())  # the probe reads the square empty after each edit
    assert ME.greedy_moves(handle, by_layer, batch, [0, 1], 4.0, random_seed=0) == ME.greedy_moves(handle, by_layer, batch, [0, 1], 4.0, random_seed=0)
    res = ME.edit_piece_move(handle, by_layer, moves, chess.B5, 0, [0, 1], 4.0)
    assert res.move_edited == edited[0] and "Bxc6" in res.legal_real_texts and "Bxc6" not in res.legal_edited_texts
    assert res.move_clean == ME.greedy_moves(handle, by_layer, batch, [0, 1], 0.0)[0]  # one batch of three rows, each as if alone
    assert res.readings == {layer: (int(b[0]), int(a[0])) for layer, (b, a) in readings.items()}
    assert "Without the edit the model writes" in res.verdict()
    # The probe viewer's one pass of the position: the probes read it and the edit continues from
    # its keys and values, with the numbers of passes of their own.
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    run = P.position_pass(handle, moves, list(probes))
    prefix = batch.tokens[0, : int(batch.last[0])]
    assert ME._keys_from_run(TransformerLensKeyValueCache.init_cache(handle.cfg, handle.cfg.device, 1), run, prefix, handle.cfg)
    assert not ME._keys_from_run(TransformerLensKeyValueCache.init_cache(handle.cfg, handle.cfg.device, 1), P.position_pass(handle, moves[:3], list(probes)), prefix, handle.cfg)
    from_run = ME.edit_piece_move(handle, by_layer, moves, chess.B5, 0, [0, 1], 4.0, run=run)
    assert (from_run.move_clean, from_run.move_edited, from_run.move_random, from_run.readings) == (res.move_clean, res.move_edited, res.move_random, res.readings)
    for hook, probs in P.probe_position(handle, probes, moves, run=run).items():
        assert np.abs(probs - P.probe_position(handle, probes, moves)[hook]).max() <= 1e-6
    seen = []
    sweep = ME.removal_sweep(handle, by_layer, game.edit_examples(4, seed=1), [1], [0, 2], progress=lambda text, f: seen.append((text, f)))
    assert sweep["scale"] == [0, 2] and all(0.0 <= v <= 1.0 for v in sweep["probe"] + sweep["random"])
    assert sweep["probe"][0] == sweep["random"][0]  # scale 0 edits nothing: one run serves both
    assert [f for _, f in seen] == sorted(f for _, f in seen) and seen[-1][1] == 1.0 and len(seen) == 4  # three runs, then done
    assert "scale 2, random direction (3 of 3)" in seen[2][0]
    with pytest.raises(ValueError, match="kings"):
        game.edit_position(moves, chess.E1, 0)


def _decoded(game, tokens: list[int]) -> str:
    end = game.move_end_token
    return "".join(game.vocab[t] for t in tokens[: tokens.index(end)]) if end in tokens else ""


def test_pages_say_so_when_the_next_move_no_longer_fits_the_context(pgn_hub_model):
    from tests.test_board_player_page import open_page

    game = get_game("chess", 8, "pgn-chars", 256)
    row = next(r for r in game.random_games(20, seed=3) if len(game.tokenizer.records([int(m) for m in r if m >= 0])[0]) > 300)
    moves = game.fit_moves(tuple(int(m) for m in row if m >= 0))  # as long as the 256-character context allows
    assert len(game.game_tokens(moves)) > 256 - 9
    for page in ("pages/board_player.py", "pages/logit_lens.py", "pages/patching_lab.py", "pages/sae_browser.py", "pages/probe_viewer.py"):
        at = open_page(page, model=pgn_hub_model, moves=game.url_moves(moves))
        assert not at.exception and not at.error, (page, [e.value for e in at.error])
    at = open_page("pages/logit_lens.py", model=pgn_hub_model, moves=game.url_moves(moves))
    assert any("no longer fits" in i.value for i in at.info)


def test_greedy_moves_under_an_edit_equal_decoding_with_the_edit_on_every_pass(pgn_handle):
    """The edited prefix runs once and the move is written from cached keys and values: the same
    characters as re-running the whole edited sequence for every character."""
    from core.interp.probes import move_edits as ME
    from core.interp.probes import linear_probes as P
    from core.interp.probes.interventions import edit_hooks, make_batch
    from core.interp.probes.piece_edits import edit_vectors

    handle, game = pgn_handle, pgn_handle.game
    probes = P.train_probes(handle, "piece", ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"], train_games=8, test_games=4)
    by_layer = {p.meta["layer"]: p for p in probes.values()}
    prefixes = [tuple(C.parse_moves("e4 e5 Nf3 Nc6 Bb5")), tuple(C.parse_moves("d4")), tuple(C.parse_moves("e4 c5 Nf3 d6 d4 cxd4 Nxd4"))]
    squares = [chess.B5, chess.D4, chess.D4]
    batch = make_batch(prefixes, squares, [6, 6, 6], game)  # rows of three lengths
    for scale, seed in ((8.0, None), (0.0, None)):
        ours = ME.greedy_moves(handle, by_layer, batch, [0, 1], scale, random_seed=seed)
        for i in range(3):
            row = make_batch([prefixes[i]], [squares[i]], [6], game)
            tokens = row.tokens[0].tolist()
            edit = lambda layer, x, row=row: edit_vectors(x, by_layer[layer], row.squares, row.targets)  # noqa: E731
            written = []
            for _ in range(8):
                logits = handle.run_with_hooks(torch.tensor([tokens]), edit_hooks(row, [0, 1], scale, edit, seed))
                written.append(int(logits[0, -1].argmax()))
                tokens.append(written[-1])
            assert ours[i] == _decoded(game, written), (scale, i)
