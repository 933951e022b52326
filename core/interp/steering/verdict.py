"""One sentence on what an edit did: the move (or token) before and after, the legality of what
the model now plays, and the size of the change against a random unit's edit of the same kind
(the control): a unit matters here when its edit moves the distribution well beyond a random
one's."""

from __future__ import annotations

MATTERS = 3.0  # KL at least this many times the control's: the unit matters here
NO_MORE = 1.5  # below this many times: no more than a random unit
NOTHING = 1e-9  # nats: an edit below this changed nothing
SMALL = 0.01  # nats: below this the change is too small to rank the unit by


def nats(value: float) -> str:
    return f"{value:.3f}" if value >= 1e-3 else f"{value:.1e}"


def compare_to_control(kl: float, control_kl: float, control_name: str) -> str:
    """The edit's KL beside the control's, and what the ratio says."""
    if control_kl <= NOTHING:
        judged = "any change here is this unit's" if kl >= SMALL else "and this edit changes little either"
        return f"{control_name} edited the same way changes nothing (KL {nats(control_kl)} nats), {judged}"
    ratio = kl / control_kl
    if kl < SMALL:
        judged = "both changes are small (under 0.01 nats)"
    else:
        judged = "this unit matters here far more than a random one" if ratio >= MATTERS else "no more than a random one" if ratio < NO_MORE else "somewhat more than a random one"
    times = f"{ratio:.1f}×" if ratio < 1000 else "over 1000×"
    return f"that is {times} the KL of {control_name} edited the same way ({nats(control_kl)} nats): {judged}"


def describe(edit_words: str, thing: str, before: tuple[str, float | None, bool | None], after: tuple[str, float | None, bool | None], kl: float, control_kl: float, control_name: str,
             illegal: tuple[float, float] | None = None) -> str:
    """``edit_words`` ("Clamping feature 12 to 2× its maximum at this position"); ``thing``
    ("move", "token"); ``before``/``after``: (what the model plays, its probability or None, legal
    or None for text); ``illegal``: the illegal probability mass before and after."""
    if kl <= NOTHING:
        return (f"{edit_words} changes nothing here: the unit already holds that value at these positions, or it is not active "
                f"(KL {nats(kl)} nats; {compare_to_control(kl, control_kl, control_name)}).")

    def shown(item) -> str:
        text, p, legal = item
        words = repr(text) if thing == "token" else (text or "no complete move")
        if p is not None:
            words += f" ({p:.1%})"
        if legal is False:
            words += ", illegal"
        return words

    if before[0] == after[0]:
        change = f"the model's {thing} stays {shown(after)}" if after[1] is None or before[1] is None else f"the model's {thing} stays {before[0] if thing != 'token' else repr(before[0])} ({before[1]:.1%} → {after[1]:.1%})"
    else:
        change = f"the model's {thing} goes from {shown(before)} to {shown(after)}"
    mass = f"; illegal probability {illegal[0]:.1%} → {illegal[1]:.1%}" if illegal is not None else ""
    return f"{edit_words}: {change}{mass}; KL {nats(kl)} nats — {compare_to_control(kl, control_kl, control_name)}."
