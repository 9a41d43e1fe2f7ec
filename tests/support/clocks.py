"""Fake clocks the tests set and advance by hand."""

from __future__ import annotations

import datetime as dt


class FakeClock:
    """A monotonic clock in seconds (``time.monotonic``'s shape): read ``t``, set it or
    ``advance`` it."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class WallClock:
    """A wall clock (aware datetimes, ``now``), advanced by hand."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)
