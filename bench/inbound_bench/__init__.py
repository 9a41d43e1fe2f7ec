"""Inbound dispatch latency and load on the sandbox Asterisk, with the product's runtime in-process.

    python -m bench.inbound_bench            # latency (200 probe calls x 2 agent modes) + load
    python -m bench.inbound_bench --quick    # a smoke run: 40 probes, 60 load calls
    python -m bench.inbound_bench --part latency|load
    python -m bench.inbound_bench --help

Needs root (the sandbox chroot) and SIPp. It brings up its own sandbox instance
``bench`` (base port 41000: ports 41038..45300 with the SIPp phones), provisions a
fresh SQLite database (or ``--database-url``), installs the generated dialplan and
runs ``wiring.build_runtime`` (ARI supervisor + inbound Stasis app + distributor) on
this process's event loop, exactly as ``serve`` does (logging INFO to a file).
20 SIPp agent phones answer after ``--answer-ms``; 20 bench agents drive the
distributor's desk API and accept every offer at once.

Bench agents, two modes:

* ``desktop``: like the desktop's SSE stream (``web/push.py``): one hub subscription
  per agent, a burst of ``AgentViewChanged`` is coalesced, then ``desk.view(agent)``
  is read, rendered and serialised as the push does (what the browser would be sent)
  and acted on; a burst of only ``DeskLineCount`` (a line's queue changed, issue #19)
  is serialised as the push's ``count`` message instead. Acting: close an ended call card,
  accept an offer, make itself ready at once after a system pause (no_answer). This
  is the cost ``serve`` pays with 20 desktops open.
* ``direct``: the same reactions, read from the distributor's in-memory state instead
  of ``desk.view`` (no DB reads): the dispatch path without view rendering.

Part 1, dispatch latency: 50 callers wait on a "backlog" line no agent staffs (the
routing core weighs them on every decision, the desk views count them), 20 agents are
ready on the "probe" line, and probe calls arrive at ``--probe-rate`` and hold 1.5-2.5 s.
Monotonic timestamps per probe call, taken by wrapping (never editing) product objects:

  ws       the ARI client decodes the StasisStart frame (``AriClient.decode``)
  start    the supervisor dispatches StasisStart (``_dispatch``)
  arrived  ``distributor.call_arrived`` entered (answered, in the holding bridge)
  offered  ``distributor._offer`` returned (offer stored, AgentViewChanged published)
  accept   ``distributor.accept`` entered (the bench agent's reaction)
  orig     the HTTP ``POST /channels`` originate to the agent is issued
  orig_ok  Asterisk answered that request

Beside it, in the same run: the bare ARI REST round trip, ``GET /asterisk/info`` and a
channel-variable GET through the same ARI client (its HTTP pool), and
``GET /asterisk/info`` with a plain httpx client; sequentially before the probes
(idle) and every 100 ms during them (loaded, same event loop); and ``GET
/asterisk/info`` every 50 ms from a separate process during the probes (the machine's
load as the product sees it, without the product's event loop). The verdict compares
p99 with p99 of the idle round trip, and also says how far the p99 is from 3x its median.

Part 2, load: ``--load-calls`` SIPp calls at ``--load-rate`` calls/s on a third line,
callers hold 8-15 s (uniform, from Asterisk's answer) then hang up; 20 agents. Checked
afterwards: every call has a DB row that is ENDED (answered) or MISSED (with a missed-
call record), the count equals the calls SIPp placed, SIPp saw every call succeed,
Asterisk holds no channel and no agent is left offered/busy (exit code 1 otherwise);
agent legs in the DB and the agent phones' completed calls are reported beside.
CPU: this process (``resource.getrusage``: the runtime plus the bench agents) and
Asterisk (``/proc/<pid>/stat``) over the run, per call; event-loop lag sampled every 5 ms.

Both parts also time the synchronous work on the loop (each distributor DB transaction,
by the method that opened it, and ``Distributor.dispatch``) and every ARI REST request.
``--py-spy`` records each part with py-spy (``pip install py-spy``) and prints the
functions and product lines with the largest share of samples.

Results: a JSON file and a markdown section in the work directory (``--workdir``).
"""

from bench.inbound_bench.agents import BenchAgents
from bench.inbound_bench.common import (
    BASE_PORT,
    DID_BACKLOG,
    DID_LOAD,
    DID_PROBE,
    INSTANCE,
    N_AGENTS,
    REPO,
    fmt,
    pct,
    summary_ms,
    until,
)
from bench.inbound_bench.harness import Bench
from bench.inbound_bench.measure import Marks, asterisk_cpu_s, instrument, pids_cpu_s, process_cpu_s
from bench.inbound_bench.report import machine, markdown, profile_summary

__all__ = [
    "BASE_PORT",
    "DID_BACKLOG",
    "DID_LOAD",
    "DID_PROBE",
    "INSTANCE",
    "N_AGENTS",
    "REPO",
    "Bench",
    "BenchAgents",
    "Marks",
    "asterisk_cpu_s",
    "fmt",
    "instrument",
    "machine",
    "markdown",
    "pct",
    "pids_cpu_s",
    "process_cpu_s",
    "profile_summary",
    "summary_ms",
    "until",
]
