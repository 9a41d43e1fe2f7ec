"""Per-contact answer odds: which of the lines ringing a person is likely to answer (F-D4).

Pure: observations in, immutable learner out. No I/O, no clock, no randomness.

Why
---
The pacer counts the calls that will need an agent as a sum of yes/no events, one per
ringing line. With one shared answer rate every line is alike, and the sum's variance is
what a dialer pays for (docs/benchmarks.md, "Issue 18, run 6": knowing *which* lines a
person answers would lift 20 agents at 15 % from 0.78 to 0.84). Real lists are not alike:
a contact asked to be called back answers far more often than one that rang out three
times. Odds spread apart lower the variance of the sum at the same mean (a Poisson-binomial
sum of ``p_i`` varies by ``sum p_i (1 - p_i)``, less than ``n p (1 - p)``).

The model
---------
A dial is described by what the dialer stores when it claims a contact
(:func:`stratum`): how the contact's last attempt ended, which attempt this is (1, 2, 3,
4+) and the list it came from. The strata form a tree, ``()`` → ``(last,)`` →
``(last, attempt)`` → ``(last, attempt, source)``; each node keeps faded counts of dials
and person answers. A node's rate is a Beta-binomial estimate shrunk to its parent's
(``strength`` pseudo-dials of the parent's rate), so a stratum with few dials says what
its parent says and one with many speaks for itself. Counts are halved together when the
root passes ``max_weight`` (older dials fade; ratios are kept).

The pacer uses odds *relative to the campaign's*: :meth:`AnswerOdds.multiplier` is the
stratum's rate over the root's (both from the same dials), 1.0 for a list where every
contact looks alike, so the pacer's own drift-following answer rate
(:class:`~.pacing_learn.DialLearner`) keeps setting the level and the odds only say which
lines are above or below it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["AnswerOdds", "Stratum", "learn_odds", "observe_odds", "stratum"]

#: ``(last outcome, attempt bucket, source)`` or a prefix of it (the tree's nodes).
Stratum = tuple[str, ...]

#: how a contact's previous attempt ended, as the dialer stores it (``attempts.result``,
#: a busy's reason, a callback asked for) → the stratum's name
_LAST = {
    None: "new",
    "": "new",
    "no_answer": "no_answer",
    "failed": "failed",
    "busy": "busy",
    "machine": "machine",
    "abandoned": "abandoned",
    "ended": "reached",
    "callback": "callback",
}


def stratum(attempt: int, last_result: str | None = None, source: str = "") -> Stratum:
    """A dial's stratum from what the dialer knows of the contact when it dials:
    ``attempt`` (1 = the first dial of this contact), how the previous attempt ended
    (``None``: never dialed) and the list or source it came from."""
    last = _LAST.get(last_result, "other")
    bucket = str(min(4, max(1, attempt)))
    return (last, bucket, source)


@dataclass(frozen=True, slots=True)
class AnswerOdds:
    """Faded dial and person-answer counts per stratum node (see the module docstring)."""

    #: node → (dials, persons), faded; the root is ``()``.
    counts: dict[Stratum, tuple[float, float]] = field(default_factory=dict)
    #: pseudo-dials of the parent's rate each node is shrunk with
    strength: float = 30.0
    #: when the root's dials pass this, every count is halved
    max_weight: float = 6000.0

    def rate(self, key: Stratum) -> float:
        """The shrunk answer rate of ``key``'s stratum (0 before any dial)."""
        counts = self.counts
        root = counts.get(())
        if root is None or root[0] <= 0:
            return 0.0
        p = root[1] / root[0]
        k = self.strength
        for depth in range(1, len(key) + 1):
            node = counts.get(key[:depth])
            if node is None:
                break  # no dial of this stratum yet: its parent's rate
            p = (node[1] + k * p) / (node[0] + k)
        return p

    def multiplier(self, key: Stratum) -> float:
        """``key``'s odds relative to the campaign's (its rate over the root's): 1.0 when
        nothing is known or every dial so far was of the same stratum."""
        root = self.counts.get(())
        if root is None or root[1] <= 0 or root[0] <= 0:
            return 1.0
        # rounded: a stratum holding exactly the root's dials is 1.0, not 1 +- 1e-16
        return round(self.rate(key) / (root[1] / root[0]), 6)

    def multipliers(self, keys: Iterable[Stratum]) -> dict[Stratum, float]:
        """:meth:`multiplier` for each distinct key (build once, look up per line)."""
        return {key: self.multiplier(key) for key in dict.fromkeys(keys)}


def _fold(odds: AnswerOdds, items: Iterable[tuple[Stratum, bool]]) -> AnswerOdds:
    counts = dict(odds.counts)
    for key, person in items:
        add = 1.0 if person else 0.0
        for depth in range(len(key) + 1):
            node = key[:depth]
            d, p = counts.get(node, (0.0, 0.0))
            counts[node] = (d + 1.0, p + add)
        if counts[()][0] > odds.max_weight:
            counts = {n: (d / 2.0, p / 2.0) for n, (d, p) in counts.items()}
    return AnswerOdds(counts, odds.strength, odds.max_weight)


def observe_odds(odds: AnswerOdds, key: Stratum, person: bool) -> AnswerOdds:
    """One dial of stratum ``key`` stopped ringing: answered by a person or not."""
    return _fold(odds, ((key, person),))


def learn_odds(items: Iterable[tuple[Stratum, bool]], odds: AnswerOdds | None = None) -> AnswerOdds:
    """``odds`` after observing ``items`` (stratum, answered by a person), oldest first:
    the same as :func:`observe_odds` once per item, with one copy of the counts."""
    return _fold(odds or AnswerOdds(), items)
