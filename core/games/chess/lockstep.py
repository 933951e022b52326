"""Random chess games for a whole batch at once: every game advances one half-move per numpy step.

Training, probes and SAE indexes ask for many random games at a time. Played one position at a time, even with
a compiled move generator, most of the cost is Python work per position (~60 calls into the
generator, tuples, sorting). Here the position of every game in the batch is a handful of uint64
arrays (one entry per game), and one step computes all games' legal moves, picks their moves and
plays them with array operations: bitboard shifts and fills (Kogge-Stone) for attacks, per-piece
rows ``(game, from-square, destinations)`` for the legal-move groups ``Replay`` stores.

The rules are python-chess's, restated on bitboards: pins and checks restrict moves, a king may not
step into an attacked square, castling needs its rights, empty path and unattacked transit squares,
an en-passant capture is legal only if the king is not attacked after it (the capture is made and
tested), promotions count as four moves. Ends as in ``records._end``. Tests compare every record with
python-chess position by position, and with the one-position-at-a-time engines field by field.
Given games are replayed the same way; a move that is illegal or follows the end stops its game,
and the first such game in batch order is reported, as the per-position engines report it.
"""

from __future__ import annotations

import chess
import numpy as np

from core.games.chess import records as C

U64 = np.uint64
_FULL = 0xFFFF_FFFF_FFFF_FFFF
_FILE_A, _FILE_H = 0x0101010101010101, 0x8080808080808080
_NOT_A, _NOT_H = U64(~_FILE_A & _FULL), U64(~_FILE_H & _FULL)
_NOT_AB = U64(~(_FILE_A | _FILE_A << 1) & _FULL)
_NOT_GH = U64(~(_FILE_H | _FILE_H >> 1) & _FULL)
_ALL = U64(_FULL)
_RANK = [U64(0xFF << (8 * r)) for r in range(8)]
# (shift, mask of squares a step may land on): positive shifts go up the board (a1 = bit 0).
_KNIGHT_STEPS = ((17, _NOT_A), (15, _NOT_H), (10, _NOT_AB), (6, _NOT_GH), (-6, _NOT_AB), (-10, _NOT_GH), (-15, _NOT_A), (-17, _NOT_H))

_KNIGHT = np.array(chess.BB_KNIGHT_ATTACKS, dtype=U64)
_KING = np.array(chess.BB_KING_ATTACKS, dtype=U64)
_PAWN_ATTACKS = np.array(chess.BB_PAWN_ATTACKS, dtype=U64)  # [colour (0 black, 1 white), square]
_LINE = np.array(chess.BB_RAYS, dtype=U64)  # the whole line through two squares, 0 if none
_BETWEEN = np.array([[chess.between(a, b) for b in range(64)] for a in range(64)], dtype=U64)
_BIT = np.array([1 << s for s in range(64)], dtype=U64)
_PROMO_PIECES = np.array(sorted(C.PROMOTIONS), dtype=np.int64)  # knight, bishop, rook, queen
# Castling: (rook corner, squares that must be empty, squares the king must not be attacked on, king's destination).
_CASTLES = {
    True: ((chess.BB_H1, chess.BB_F1 | chess.BB_G1, chess.BB_F1 | chess.BB_G1, chess.G1),
           (chess.BB_A1, chess.BB_B1 | chess.BB_C1 | chess.BB_D1, chess.BB_C1 | chess.BB_D1, chess.C1)),
    False: ((chess.BB_H8, chess.BB_F8 | chess.BB_G8, chess.BB_F8 | chess.BB_G8, chess.G8),
            (chess.BB_A8, chess.BB_B8 | chess.BB_C8 | chess.BB_D8, chess.BB_C8 | chess.BB_D8, chess.C8)),
}
_CORNERS = U64(chess.BB_A1 | chess.BB_H1 | chess.BB_A8 | chess.BB_H8)
_HASH = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                  0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x27D4EB2F165667C5, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9], dtype=U64)


def _shift(x: np.ndarray, s: int) -> np.ndarray:
    return x << U64(s) if s > 0 else x >> U64(-s)


# The eight ray directions as rows of one array, so one fill serves every direction at once:
# rows 0-3 shift up the board (east, north, north-east, north-west), rows 4-7 down by the same
# amounts (west, south, south-west, south-east); each with the mask of squares a step may land on
# (no wrapping round from one edge to the other).
_UP = np.array([1, 8, 9, 7], dtype=U64)[:, None]
_UP2, _UP4 = _UP * U64(2), _UP * U64(4)
_UP_MASK = np.array([_NOT_A, _ALL, _NOT_A, _NOT_H], dtype=U64)[:, None]
_DOWN_MASK = np.array([_NOT_H, _ALL, _NOT_H, _NOT_A], dtype=U64)[:, None]
_ORTHO_ROW = np.array([True, True, False, False, True, True, False, False])[:, None]


def _fill(gen: np.ndarray, empty: np.ndarray, mask: np.ndarray, up: bool) -> np.ndarray:
    """Occluded fill (Kogge-Stone) of four directions: what each row's sliders attack, up to and
    including the first occupied square."""
    pro = empty & mask
    s1, s2, s4 = _UP, _UP2, _UP4
    if up:
        gen = gen | (pro & (gen << s1))
        pro = pro & (pro << s1)
        gen = gen | (pro & (gen << s2))
        pro = pro & (pro << s2)
        gen = gen | (pro & (gen << s4))
        return (gen << s1) & mask
    gen = gen | (pro & (gen >> s1))
    pro = pro & (pro >> s1)
    gen = gen | (pro & (gen >> s2))
    pro = pro & (pro >> s2)
    gen = gen | (pro & (gen >> s4))
    return (gen >> s1) & mask


def _rays(gen: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """``gen (8, m)`` sliders per direction row, ``empty (m,)``: the attacked squares ``(8, m)``."""
    return np.concatenate([_fill(gen[:4], empty, _UP_MASK, True), _fill(gen[4:], empty, _DOWN_MASK, False)])


def _by_direction(rook_like: np.ndarray, bishop_like: np.ndarray) -> np.ndarray:
    """The sliders that move along each direction row: rooks/queens on the orthogonal rows, bishops/queens on the diagonal ones."""
    return np.where(_ORTHO_ROW, rook_like, bishop_like)


def _steps(x: np.ndarray, steps) -> np.ndarray:
    out = np.zeros_like(x)
    for s, mask in steps:
        out |= _shift(x, s) & mask
    return out


def _pawn_attacks(pawns: np.ndarray, white: bool) -> np.ndarray:
    if white:
        return (pawns << U64(9)) & _NOT_A | (pawns << U64(7)) & _NOT_H
    return (pawns >> U64(7)) & _NOT_A | (pawns >> U64(9)) & _NOT_H


def _square_of(single: np.ndarray) -> np.ndarray:
    """Index of the one set bit (-1 for 0): exact, a power of two is exact in float64."""
    return np.frexp(single.astype(np.float64))[1].astype(np.int64) - 1


def _attacked_king(king: np.ndarray, occupied: np.ndarray, their: list[np.ndarray], ksq: np.ndarray, white: bool) -> np.ndarray:
    """Whether each king (one bit per entry) is attacked by ``their`` pieces (six kinds) on ``occupied``."""
    p, n, b, r, q, _ = their
    hit = (_PAWN_ATTACKS[int(white), ksq] & p) | (_KNIGHT[ksq] & n)
    rays = _rays(np.broadcast_to(king, (8, len(king))), ~occupied)
    hit |= np.bitwise_or.reduce(rays & _by_direction(r | q, b | q), axis=0)
    return hit != 0


class _Position:
    """The positions of the games still going, one entry per game (``gid``: its row in the batch)."""

    def __init__(self, n: int):
        start = chess.Board()
        self.pieces = [np.full(n, bb, dtype=U64) for bb in (start.pawns, start.knights, start.bishops, start.rooks, start.queens, start.kings)]
        self.white = np.full(n, start.occupied_co[chess.WHITE], dtype=U64)
        self.castle = np.full(n, start.castling_rights, dtype=U64)
        self.ep = np.zeros(n, dtype=U64)  # the square a pawn just skipped, as a bit (0: none)
        self.clock = np.zeros(n, dtype=np.int64)
        self.gid = np.arange(n)

    def occupied(self) -> np.ndarray:
        p = self.pieces
        return p[0] | p[1] | p[2] | p[3] | p[4] | p[5]

    def keep(self, rows: np.ndarray) -> None:
        self.pieces = [bb[rows] for bb in self.pieces]
        for name in ("white", "castle", "ep", "clock", "gid"):
            setattr(self, name, getattr(self, name)[rows])


class _Moves:
    """The legal moves of every position of one step, as groups sorted by (game, from-square)."""

    def __init__(self, pos: _Position, white: bool):
        pieces = pos.pieces
        occ = pos.occupied()
        own = occ & pos.white if white else occ & ~pos.white
        their = occ ^ own
        empty = ~occ
        mine = [bb & own for bb in pieces]
        theirs = [bb & their for bb in pieces]
        king = mine[5]
        ksq = _square_of(king)
        rq, bq = theirs[3] | theirs[4], theirs[2] | theirs[4]

        n = len(occ)
        sliders = _by_direction(rq, bq)  # (8, n)

        # The pieces of the side to move, as (kind, game, square) rows; sliders' rays need a fill.
        flat = np.flatnonzero(C.unpack_bits(np.stack(mine)))  # (far faster than a 3-d nonzero)
        kinds, g, sq = flat // (64 * n), flat // 64 % n, flat % 64
        bounds = np.searchsorted(kinds, np.arange(7))
        bit = _BIT[sq]
        sl = slice(bounds[2], bounds[5])  # bishops, rooks, queens

        # One fill for three jobs: the opponent's sliders with our king lifted off the board (a
        # king cannot hide on a ray), rays out of our king (checks, pins), our sliders' moves.
        m = sl.stop - sl.start
        gen = np.concatenate([sliders, np.broadcast_to(king, (8, n)), np.broadcast_to(bit[sl], (8, m))], axis=1)
        rays = _rays(gen, np.concatenate([empty | king, empty, empty[g[sl]]]))
        their_rays, king_rays, own_rays = rays[:, :n], rays[:, n : 2 * n], rays[:, 2 * n :]
        attacked = np.bitwise_or.reduce(their_rays, axis=0)
        attacked |= _pawn_attacks(theirs[0], not white) | _steps(theirs[1], _KNIGHT_STEPS) | _KING[_square_of(theirs[5])]
        self.in_check = (attacked & king) != 0

        # Checkers, and pieces pinned to the king (the first own piece on a ray, a slider behind it).
        checkers = (_PAWN_ATTACKS[int(white), ksq] & theirs[0]) | (_KNIGHT[ksq] & theirs[1])
        checkers |= np.bitwise_or.reduce(king_rays & sliders, axis=0)
        blockers = king_rays & own
        pinners = _rays(blockers, empty) & sliders
        pinned = np.bitwise_or.reduce(np.where(pinners != 0, blockers, U64(0)), axis=0)
        n_checkers = np.bitwise_count(checkers)
        one_checker = np.where(n_checkers == 1, checkers, U64(0))
        evasion = np.where(n_checkers == 0, _ALL, np.where(n_checkers == 1, one_checker | _BETWEEN[ksq, np.maximum(_square_of(one_checker), 0)], U64(0)))

        to = np.zeros(len(g), dtype=U64)
        # Pawns: pushes (the double step through an empty square) and captures; en passant apart.
        p = slice(bounds[0], bounds[1])
        e = empty[g[p]]
        push = _shift(bit[p], 8 if white else -8) & e
        push |= _shift(push, 8 if white else -8) & e & _RANK[3 if white else 4]
        pawn_attacks = _PAWN_ATTACKS[int(white), sq[p]]
        to[p] = push | (pawn_attacks & their[g[p]])
        kn = slice(bounds[1], bounds[2])
        to[kn] = _KNIGHT[sq[kn]]
        own_kind = kinds[sl][None, :]
        to[sl] = np.bitwise_or.reduce(np.where(_ORTHO_ROW, own_kind != 2, own_kind != 3) * own_rays, axis=0)
        k = slice(bounds[5], bounds[6])
        to[k] = _KING[sq[k]] & ~attacked[g[k]]
        to &= ~own[g]
        # Every piece but the king: out of check, and along its pin line if pinned.
        nk = slice(0, bounds[5])
        gk = g[nk]
        to[nk] &= evasion[gk] & np.where((pinned[gk] & bit[nk]) != 0, _LINE[ksq[gk], sq[nk]], _ALL)
        to[k] |= _castling(pos, occ, attacked, self.in_check, white)[g[k]]

        legal_ep = np.zeros_like(occ)
        ep_hit = pawn_attacks & pos.ep[g[p]]
        if ep_hit.any():
            # En passant: make the capture and look at the king (pins along the rank, checks by the taken pawn).
            i = np.nonzero(ep_hit)[0]
            gi = g[p][i]
            taken = _shift(pos.ep[gi], -8 if white else 8)
            after = occ[gi] ^ bit[p][i] ^ pos.ep[gi] ^ taken
            ok = ~_attacked_king(king[gi], after, [bb[gi] & ~taken for bb in theirs], ksq[gi], white)
            to[p.start + i[ok]] |= ep_hit[i[ok]]
            legal_ep[gi[ok]] = pos.ep[gi[ok]]

        kind = kinds.astype(np.int8)
        keep = to != 0
        g, sq, to, kind = g[keep], sq[keep], to[keep], kind[keep]
        order = np.argsort(g * 64 + sq, kind="stable")
        self.g, self.sq, self.to, self.kind = g[order], sq[order], to[order], kind[order]
        self.promo = (self.kind == 0) & ((self.sq >> 3) == (6 if white else 1))
        self.count = np.bitwise_count(self.to).astype(np.int64) * np.where(self.promo, 4, 1)
        self.total = np.bincount(self.g, weights=self.count, minlength=len(occ)).astype(np.int64)
        self.legal_ep = legal_ep

    def keep(self, going: np.ndarray) -> None:
        """Only the games where ``going`` (their rows renumbered)."""
        rows = np.nonzero(going[self.g])[0]
        self.g = (np.cumsum(going) - 1)[self.g[rows]]
        self.sq, self.to, self.kind, self.promo, self.count = (x[rows] for x in (self.sq, self.to, self.kind, self.promo, self.count))
        self.total = self.total[going]

    def find(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each game's move int: whether it is legal here, and the row of its piece."""
        frm, to, promo = codes % 64, codes // 64 % 64, codes // 4096
        keys = self.g * 64 + self.sq
        want = np.arange(len(codes)) * 64 + frm
        row = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
        if not len(keys):
            return np.zeros(len(codes), dtype=bool), row
        found = keys[row] == want
        lands = (self.to[row] >> to.astype(U64)) & U64(1) != 0
        promotes = self.promo[row]
        promo_ok = np.where(promotes, (promo >= 2) & (promo <= 5), promo == 0)
        return found & lands & promo_ok & (codes >= 0) & (codes < 4096 * 6), row

    def pick(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The move at fraction ``u`` of each game's legal moves in canonical order (as ``chess.pick``):
        ``(from-square, to-square, promotion piece or 0, moving piece kind)`` per game."""
        k = (u * self.total).astype(np.int64)
        ends = np.cumsum(self.count)
        starts = ends - self.count
        first = np.searchsorted(self.g, np.arange(len(self.total)))
        target = starts[first] + k
        row = np.searchsorted(ends, target, side="right")
        within = target - starts[row]
        step = np.where(self.promo[row], 4, 1)
        nth = within // step
        bits = C.unpack_bits(self.to[row])
        to = np.argmax(np.cumsum(bits, axis=1) > nth[:, None], axis=1)
        promo = np.where(self.promo[row], _PROMO_PIECES[within % 4], 0)
        return self.sq[row], to, promo, self.kind[row].astype(np.int64)


def _castling(pos: _Position, occ: np.ndarray, attacked: np.ndarray, in_check: np.ndarray, white: bool) -> np.ndarray:
    """The king's castling destinations per game: a right left, an empty path, no check on the way."""
    to = np.zeros_like(occ)
    for corner, path, transit, dest in _CASTLES[white]:
        ok = ~in_check & ((pos.castle & U64(corner)) != 0) & ((occ & U64(path)) == 0) & ((attacked & U64(transit)) == 0)
        to |= np.where(ok, U64(1 << dest), U64(0))
    return to


def _play(pos: _Position, frm: np.ndarray, to: np.ndarray, promo: np.ndarray, kind: np.ndarray, white: bool) -> None:
    """Play one move in every game (python-chess's ``push`` on bitboards)."""
    fb, tb = _BIT[frm], _BIT[to]
    capture = (pos.occupied() & tb) != 0
    is_pawn, is_king = kind == 0, kind == 5
    en_passant = is_pawn & (tb == pos.ep) & (pos.ep != 0)
    taken = np.where(en_passant, _shift(tb, -8 if white else 8), U64(0))
    castles = is_king & (np.abs(to - frm) == 2)
    kingside = to > frm
    rook_from = np.where(castles, _BIT[np.where(kingside, frm + 3, frm - 4) % 64], U64(0))
    rook_to = np.where(castles, _BIT[np.where(kingside, frm + 1, frm - 1) % 64], U64(0))
    lands = np.where(promo > 0, promo - 1, kind)
    for k in range(6):
        bb = pos.pieces[k] & ~tb & ~taken & ~np.where(kind == k, fb, U64(0))
        bb |= np.where(lands == k, tb, U64(0))
        if k == 3:
            bb = bb & ~rook_from | rook_to
        pos.pieces[k] = bb
    if white:
        pos.white = (pos.white & ~fb & ~rook_from) | tb | rook_to
    else:
        pos.white = pos.white & ~tb & ~taken
    pos.castle &= ~(fb | tb)
    pos.castle &= np.where(is_king, ~_RANK[0 if white else 7], _ALL)
    pos.ep = np.where(is_pawn & (np.abs(to - frm) == 16), _BIT[(frm + to) // 2], U64(0))
    pos.clock = np.where(is_pawn | capture, 0, pos.clock + 1)


def _insufficient(pos: _Position) -> np.ndarray:
    out = np.zeros(len(pos.gid), dtype=bool)
    p, n, b, r, q, k = pos.pieces
    for i in np.nonzero((p | r | q) == 0)[0]:  # pawns, rooks or queens always leave mating material
        occ = int(n[i] | b[i] | k[i])
        out[i] = C.insufficient_material(0, int(n[i]), int(b[i]), 0, 0, int(k[i]), int(pos.white[i]), occ & ~int(pos.white[i]))
    return out


def run_lockstep(n: int, T: int, uniforms: np.ndarray | None = None, games: np.ndarray | None = None) -> tuple[np.ndarray, C.Replay]:
    """Play ``n`` random games of at most ``T`` moves (``uniforms (n, T)`` pick the moves), or
    replay ``games (n, T)`` (move ints, -1 after a game's last move): the records ``rules._run``
    makes, the same as its other engines, and the same ``MoveError`` for the first game (in batch
    order) with a move that is illegal or follows the end."""
    if uniforms is not None and uniforms.size and not (uniforms.min() >= 0 and uniforms.max() < 1):
        raise ValueError("uniforms must lie in [0, 1)")
    rec = C._Recorder(n, T)
    pos = _Position(n)
    start = tuple(int(bb[0]) for bb in pos.pieces) + (int(pos.white[0]),) if n else C._bitboards(chess.Board())
    # A position's repetition key is its board (six piece kinds and the white pieces: the records
    # keep those), castling rights and legal en-passant square (kept here), and the side to move
    # (the parity of t). Repeats are counted on a hash of the key and confirmed on the key itself.
    hashes = np.zeros((n, T + 1), dtype=U64)
    rights = np.zeros((n, T + 1, 2), dtype=U64)
    start_board = np.array(start, dtype=U64)
    group_parts: list[tuple[np.ndarray, ...]] = []
    errors: dict[int, tuple[int, str]] = {}  # game -> (move index, why), replays only
    for t in range(T + 1):
        if not len(pos.gid):
            break
        white = t % 2 == 0
        moves = _Moves(pos, white)
        gid = pos.gid
        if t > 0:
            rec.check[gid, t - 1] = moves.in_check
        key = np.stack([*pos.pieces, pos.white, pos.castle & _CORNERS, moves.legal_ep], axis=1)
        h = (key * _HASH).sum(axis=1, dtype=U64)
        h ^= h >> U64(29)
        hashes[gid, t], rights[gid, t] = h, key[:, 7:]
        repeats = (hashes[gid, t % 2 : t + 1 : 2] == h[:, None]).sum(axis=1)
        for i in np.nonzero(repeats >= 3)[0]:
            same_side = np.arange(t % 2, t + 1, 2)
            boards = np.where((same_side == 0)[:, None], start_board, rec.bits[gid[i], np.maximum(same_side - 1, 0)])
            same = (boards == key[i, :7]).all(axis=1) & (rights[gid[i], same_side] == key[i, 7:]).all(axis=1)
            repeats[i] = same.sum()
        if t > 0:
            no_moves = moves.total == 0
            ended = np.select(
                [no_moves & moves.in_check, no_moves, _insufficient(pos), pos.clock >= 100, repeats >= 3],
                [1, 2, 3, 4, 5], 0,
            )
            over = ended > 0
            if over.any():
                rec.termination[gid[over]] = ended[over]
                rec.lengths[gid[over]] = t
                if games is not None and t < T:
                    for g in gid[over][games[gid[over], t] >= 0]:
                        errors[int(g)] = (t, f"{C._safe_uci(int(games[g, t]))} follows the end of the game ({C.TERMINATIONS[rec.termination[g]]})")
                moves.keep(~over)
                pos.keep(np.nonzero(~over)[0])
                gid = pos.gid
                if not len(gid):
                    break
        group_parts.append((gid[moves.g] * (T + 1) + t, moves.sq, moves.to, moves.promo))
        if t == T:
            break
        if games is None:
            frm, to, promo, kind = moves.pick(uniforms[gid, t])
        else:
            codes = games[gid, t]
            legal, row = moves.find(codes)
            for i in np.nonzero(~legal & (codes >= 0))[0]:
                errors[int(gid[i])] = (t, C._why_illegal(C.board_after([int(m) for m in games[gid[i], :t]]), int(codes[i])))
            if not legal.all():  # a pad ends the game's row; an illegal move ends it too (and is raised below)
                rec.lengths[gid[~legal]] = t
                pos.keep(np.nonzero(legal)[0])
                gid, codes, row = pos.gid, codes[legal], row[legal]
                if not len(gid):
                    break
            frm, to, promo, kind = codes % 64, codes // 64 % 64, codes // 4096, moves.kind[row].astype(np.int64)
        _play(pos, frm, to, promo, kind, white)
        rec.played[gid, t] = frm + 64 * to + 4096 * promo
        rec.bits[gid, t] = np.stack([*pos.pieces, pos.white], axis=1)
        rec.clock[gid, t] = pos.clock
        rec.mover[gid, t] = C.WHITE if white else C.BLACK
        rec.next_player[gid, t] = C.BLACK if white else C.WHITE
    rec.lengths[pos.gid] = T
    if errors:
        g = min(errors)
        raise C.MoveError(g, errors[g][0], errors[g][1])
    if group_parts:
        g_pos, g_from, g_to, g_promo = (np.concatenate(x) for x in zip(*group_parts))
        # Game-major order: the parts come step by step, so a stable sort on the game alone does
        # it, and numpy sorts 16-bit keys stably by radix (linear time).
        game = g_pos // (T + 1)
        order = np.argsort(game.astype(np.int16) if n < 2**15 else game, kind="stable")
        groups = (g_pos[order], g_from[order].astype(np.int64), g_to[order], g_promo[order])
    else:
        groups = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, U64), np.zeros(0, bool))
    return rec.played, rec.finish(start, groups)
