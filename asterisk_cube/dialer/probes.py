"""Bounded histograms of the dialer's timings (issue #13).

The dialer used to append every connect delay, agent answer delay and abandon wait to a
list kept for the life of the process, only so that tests and benchmarks could read them.
A :class:`Histogram` keeps a fixed number of counters instead (Prometheus' cumulative
``le`` buckets), plus the count, sum, least and greatest value exactly; quantiles are
estimated from the buckets. ``GET /metrics`` exports them (``asterisk_cube_dialer_*``)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable

from prometheus_client.core import HistogramMetricFamily

#: Call-path delays (answer -> bridged, agent rung -> answered, answer -> abandon), seconds.
CALL_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75,
    0.9, 1.0, 1.25, 1.5, 1.75, 1.8, 1.9, 2.0, 2.1, 2.25, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 30.0,
)  # fmt: skip
#: The dialer step's duration, seconds.
STEP_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
)  # fmt: skip


class Histogram:
    """Observations in fixed buckets: memory does not grow with the number of calls."""

    def __init__(self, name: str, doc: str, buckets: Iterable[float] = CALL_BUCKETS) -> None:
        self.name = name
        self.doc = doc
        self.bounds: tuple[float, ...] = (*sorted(set(buckets)), math.inf)
        self.buckets = [0] * len(self.bounds)  # not cumulative: one counter per bucket
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def observe(self, value: float) -> None:
        self.buckets[bisect.bisect_left(self.bounds, value)] += 1  # value <= bound (le)
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else math.nan

    def quantile(self, q: float) -> float:
        """Estimated: linear inside the bucket the rank falls in, within [min, max]."""
        if not self.count:
            return math.nan
        rank = q * self.count
        seen = 0
        for i, n in enumerate(self.buckets):
            if n and seen + n >= rank:
                low = self.bounds[i - 1] if i else self.min
                high = self.bounds[i]
                low, high = max(low, self.min), min(high, self.max)
                return low + (high - low) * max(0.0, rank - seen) / n
            seen += n
        return self.max

    def metric(self, prefix: str) -> HistogramMetricFamily:
        family = HistogramMetricFamily(f"{prefix}_{self.name}", self.doc)
        cumulative, total = [], 0
        for bound, n in zip(self.bounds, self.buckets, strict=True):
            total += n
            cumulative.append(("+Inf" if bound == math.inf else repr(bound), total))
        family.add_metric([], cumulative, self.sum)
        return family

    def __repr__(self) -> str:
        if not self.count:
            return f"<{self.name}: empty>"
        return (
            f"<{self.name}: n={self.count} min={self.min:.3f} p50~{self.quantile(0.5):.3f} "
            f"max={self.max:.3f}>"
        )


class Probes:
    """The dialer's timings, each one bounded histogram."""

    def __init__(self) -> None:
        self.connect_delays = Histogram(
            "dialer_connect_seconds", "Contact answered -> bridged with an agent"
        )
        self.agent_answer_delays = Histogram(
            "dialer_agent_answer_seconds", "Agent's phone rung -> answered (auto-answer)"
        )
        # the parts of connect_delays: the wait for a free agent, and the bridging after
        # the agent's phone answered (ARI round-trips)
        self.agent_waits = Histogram(
            "dialer_agent_wait_seconds", "Contact answered -> a free agent taken"
        )
        self.bridge_seconds = Histogram(
            "dialer_bridge_seconds", "Agent answered -> both legs bridged"
        )
        self.abandon_waits = Histogram(
            "dialer_abandon_wait_seconds", "Contact answered -> abandon decided"
        )
        self.step_seconds = Histogram(
            "dialer_step_seconds", "How long one dialer step took", STEP_BUCKETS
        )
        self.db_on_loop = Histogram(
            "dialer_db_on_loop_seconds",
            "Dialer database transactions run on the event loop",
            STEP_BUCKETS,
        )

    def all(self) -> tuple[Histogram, ...]:
        return (
            self.connect_delays,
            self.agent_answer_delays,
            self.agent_waits,
            self.bridge_seconds,
            self.abandon_waits,
            self.step_seconds,
            self.db_on_loop,
        )
