"""The dialer's timings are bounded histograms (issue #13): memory does not grow with the
calls, count/sum/min/max stay exact, quantiles are estimated, /metrics exports them."""

import math

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from asterisk_cube.dialer.probes import Histogram, Probes


def test_a_million_observations_keep_a_fixed_size_and_exact_extremes():
    h = Histogram("t", "test", buckets=(0.1, 0.5, 1.0, 2.0))
    size = len(h.buckets)
    for i in range(1_000_000):
        h.observe((i % 2000) / 1000)  # 0 .. 1.999 s, evenly
    assert len(h.buckets) == size == 5  # four bounds and +Inf
    assert h.count == 1_000_000
    assert (h.min, h.max) == (0.0, 1.999)
    assert math.isclose(h.mean, 0.9995, rel_tol=1e-6)
    assert 0.9 <= h.quantile(0.5) <= 1.1  # estimated inside its bucket
    assert 1.5 <= h.quantile(0.95) <= 1.999


def test_quantiles_stay_within_what_was_observed():
    h = Histogram("t", "test")
    assert math.isnan(h.quantile(0.5)) and h.count == 0
    h.observe(0.29)
    assert h.quantile(0.0) == h.quantile(0.5) == h.quantile(1.0) == 0.29
    h.observe(40.0)  # beyond the last bound: +Inf bucket
    assert h.buckets[-1] == 1 and h.quantile(1.0) == 40.0


def test_exported_as_prometheus_histograms():
    probes = Probes()
    for value in (0.05, 0.2, 0.2, 3.0):
        probes.connect_delays.observe(value)

    class Source(Collector):
        def collect(self):
            return [h.metric("asterisk_cube") for h in probes.all()]

    registry = CollectorRegistry()
    registry.register(Source())
    text = generate_latest(registry).decode()
    got = {
        (s.name, s.labels.get("le")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert got[("asterisk_cube_dialer_connect_seconds_count", None)] == 4
    assert math.isclose(got[("asterisk_cube_dialer_connect_seconds_sum", None)], 3.45)
    assert got[("asterisk_cube_dialer_connect_seconds_bucket", "0.2")] == 3
    assert got[("asterisk_cube_dialer_connect_seconds_bucket", "+Inf")] == 4
    assert got[("asterisk_cube_dialer_step_seconds_count", None)] == 0
