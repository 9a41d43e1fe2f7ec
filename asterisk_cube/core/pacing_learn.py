"""Power and predictive pacing, the learners: what a campaign's calls taught (F-D4).

Pure: observations in, immutable learners out. No I/O, no clock, no randomness.

Learned inputs (:class:`~.pacing_model.PacingEstimates`) come from :class:`DialLearner` and
:class:`TalkLearner` (immutable; ``observe_*`` return new learners, :func:`learn_history`
folds a past run's observations in at once) through :func:`~.pacing_model.build_estimates`. Build
estimates every few dozen events or seconds, not on every decision: the build is the
expensive part, the decision is cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "RING_TABLE_SECONDS",
    "TALK_STEP",
    "TALK_TABLE_SECONDS",
    "DialLearner",
    "Prior",
    "TalkLearner",
    "learn_history",
    "observe_dial",
    "observe_talk",
]

#: Ring-time tables cover ages 0..RING_TABLE_SECONDS seconds (1 s bins).
RING_TABLE_SECONDS = 60
#: Talk-time tables: TALK_STEP-second bins up to TALK_TABLE_SECONDS, exponential tail after.
TALK_STEP = 10.0
TALK_TABLE_SECONDS = 1800.0


@dataclass(frozen=True, slots=True)
class Prior:
    """What the pacer assumes before a campaign has history (weights in pseudo-events)."""

    answer_rate: float = 0.2
    ring_mean: float = 10.0
    ring_sd: float = 6.0
    dial_timeout: float = 30.0
    dial_weight: float = 10.0
    #: the pacer uses the answer rate plus this many standard errors
    answer_z: float = 2.0
    talk_mean: float = 150.0
    talk_sd: float = 120.0
    talk_weight: float = 10.0


def _zeros(n: int) -> tuple[float, ...]:
    return (0.0,) * n


@dataclass(frozen=True, slots=True)
class DialLearner:
    """What a campaign's dials taught: exact totals, and a recency-weighted view for pacing.

    Two views of the same dials. ``dials`` and ``persons`` are exact totals (every dial
    observed counts once, never faded or cut): what the product reports. ``weight``,
    ``person`` and ``ended`` are the estimator's weighted counts by whole seconds of
    ringing, what :func:`~.pacing_model.build_estimates` reads: they fade (halved when
    ``weight`` passes ``max_weight``) and follow drift. Beside them an exponentially
    weighted answer rate over about the last ``recent_weight`` dials; when it moves off
    the weighted counts' rate by more than ``drift_z`` standard errors (the list
    changed: a new batch, another time of day), the weighted counts are scaled down to
    half the recent weight at the recent rate (the ring-time shape is kept), so the
    estimates follow within a few hundred dials, up or down, and the answer-rate bound
    widens again while the new rate is little known. The exact totals are untouched.
    """

    #: exact number of dials observed
    dials: int = 0
    #: exact number of them answered by a person
    persons: int = 0
    #: the estimator's weighted dial count (faded, cut on drift)
    weight: float = 0.0
    person: tuple[float, ...] = _zeros(RING_TABLE_SECONDS + 1)  # answered by a person at k s
    ended: tuple[float, ...] = _zeros(RING_TABLE_SECONDS + 1)  # stopped ringing (any cause) at k s
    #: when ``weight`` passes this, the weighted counts are halved (older history fades).
    max_weight: float = 3000.0
    #: exponentially weighted dials and person answers (weight 1 - 1/recent_weight per
    #: dial). Left out of equality like ``drifts``: they depend on the order the dials
    #: ended in, which a restart's history (ordered by dial time) does not keep.
    recent_dials: float = field(default=0.0, compare=False)
    recent_person: float = field(default=0.0, compare=False)
    recent_weight: float = 150.0
    drift_z: float = 3.0
    #: how often the weighted counts were cut down to follow a drift (diagnostics)
    drifts: int = field(default=0, compare=False)

    @property
    def answer_rate(self) -> float:
        """Share of all dials observed answered by a person (exact totals: reporting)."""
        return self.persons / self.dials if self.dials else 0.0

    @property
    def estimated_answer_rate(self) -> float:
        """The weighted counts' answer rate (what the pacer's estimates rest on)."""
        return sum(self.person) / self.weight if self.weight else 0.0


def _fold_dials(dl: DialLearner, items: Iterable[tuple[float, bool]]) -> DialLearner:
    """``dl`` after observing ``items`` one by one (see :class:`DialLearner`)."""
    person, ended, count = list(dl.person), list(dl.ended), dl.weight
    n_dials, n_persons = dl.dials, dl.persons
    rd, rp, drifts = dl.recent_dials, dl.recent_person, dl.drifts
    decay = 1.0 - 1.0 / max(1.0, dl.recent_weight)
    half = dl.recent_weight / 2.0
    z = dl.drift_z
    total_p = sum(person)
    for ring_seconds, answered in items:
        k = min(RING_TABLE_SECONDS, max(0, int(ring_seconds)))
        ended[k] += 1.0
        n_dials += 1
        if answered:
            person[k] += 1.0
            total_p += 1.0
            n_persons += 1
        count += 1.0
        rd = rd * decay + 1.0
        rp = rp * decay + (1.0 if answered else 0.0)
        if count > dl.max_weight:
            count /= 2.0
            ended = [x / 2.0 for x in ended]
            person = [x / 2.0 for x in person]
            total_p /= 2.0
        if rd >= half and count > 2.0 * rd:
            p_long = total_p / count
            p_rec = rp / rd
            var = max(p_long * (1.0 - p_long), 1.0 / rd) * (1.0 / rd + 1.0 / count)
            if (p_rec - p_long) ** 2 > z * z * var:
                # the list changed: keep half the recent weight at the recent rate (the
                # recent rate lags the change, so the calls after it soon outweigh it)
                keep_d, keep_p = rd / 2.0, rp / 2.0
                others = count - total_p
                g = keep_p / total_p if total_p > 0 else 0.0
                a = (keep_d - keep_p) / others if others > 0 else 0.0
                ended = [a * (e - q) + g * q for e, q in zip(ended, person, strict=True)]
                person = [g * q for q in person]
                count, total_p = keep_d, keep_p
                drifts += 1
    return DialLearner(
        n_dials,
        n_persons,
        count,
        tuple(person),
        tuple(ended),
        dl.max_weight,
        rd,
        rp,
        dl.recent_weight,
        dl.drift_z,
        drifts,
    )


@dataclass(frozen=True, slots=True)
class TalkLearner:
    counts: tuple[float, ...] = _zeros(int(TALK_TABLE_SECONDS / TALK_STEP))
    over: float = 0.0  # calls longer than the table
    over_excess: float = 0.0  # their total seconds beyond the table
    max_weight: float = 2000.0

    @property
    def calls(self) -> float:
        return sum(self.counts) + self.over


def observe_dial(learner: DialLearner, ring_seconds: float, person: bool) -> DialLearner:
    """One dial stopped ringing after ``ring_seconds``: answered by a person or not
    (machine, no answer, busy, failure)."""
    return _fold_dials(learner, ((ring_seconds, person),))


def observe_talk(learner: TalkLearner, seconds: float) -> TalkLearner:
    """One call with an agent lasted ``seconds``."""
    counts = learner.counts
    over, excess = learner.over, learner.over_excess
    j = int(max(0.0, seconds) / TALK_STEP)
    if j < len(counts):
        c = list(counts)
        c[j] += 1.0
        counts = tuple(c)
    else:
        over += 1.0
        excess += seconds - TALK_TABLE_SECONDS
    if sum(counts) + over > learner.max_weight:
        counts = tuple(x / 2.0 for x in counts)
        over /= 2.0
        excess /= 2.0
    return TalkLearner(counts, over, excess, learner.max_weight)


def learn_history(
    dials: Iterable[tuple[float, bool]] = (),
    talks: Iterable[float] = (),
    dial_learner: DialLearner | None = None,
    talk_learner: TalkLearner | None = None,
) -> tuple[DialLearner, TalkLearner]:
    """The learners after observing ``dials`` (ring seconds, answered by a person) and
    ``talks`` (seconds), oldest first: the same as calling :func:`observe_dial` and
    :func:`observe_talk` once per item (fading included), without building a learner per
    item. A restarted dialer loads its campaigns' recent calls this way."""
    dl = _fold_dials(dial_learner or DialLearner(), dials)
    tl = talk_learner or TalkLearner()
    counts, over, excess = list(tl.counts), tl.over, tl.over_excess
    total = sum(counts) + over
    for seconds in talks:
        j = int(max(0.0, seconds) / TALK_STEP)
        if j < len(counts):
            counts[j] += 1.0
        else:
            over += 1.0
            excess += seconds - TALK_TABLE_SECONDS
        total += 1.0
        if total > tl.max_weight:
            counts = [x / 2.0 for x in counts]
            over /= 2.0
            excess /= 2.0
            total = sum(counts) + over
    return dl, TalkLearner(tuple(counts), over, excess, tl.max_weight)
