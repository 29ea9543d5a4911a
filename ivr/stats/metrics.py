"""``Metrics``: the engine in Prometheus' text format (``GET /metrics``, ``ivr.web.metrics``).

One ``CollectorRegistry`` of its own (never the process-wide default), named by Prometheus'
rules: ``ivr_`` first, base units (seconds), ``_total`` on counters.  Two kinds of figures:

- **counters and histograms**, counted as things happen, from this process' start:
  ``ivr_queue_answered_total``, ``ivr_queue_abandoned_total``, ``ivr_queue_callbacks_total``
  ``{queue,center}``, ``ivr_queue_answer_wait_seconds{queue}`` (its buckets include the service
  level's threshold, so ``…_bucket{le="20"}`` over ``…_count`` is ServicelevelPerf),
  ``ivr_calls_total{flow,outcome}``, ``ivr_flow_node_exits_total{flow,node,exit}``,
  ``ivr_calls_shed_total{why}``, ``ivr_ari_request_seconds{method,route}``,
  ``ivr_store_errors_total{operation}``;
- **gauges, read at scrape time** (a custom collector): from ``LiveStats`` the callers waiting
  ``ivr_queue_waiting_calls{queue,center,priority}``, the oldest wait
  ``ivr_queue_oldest_wait_seconds{queue,center}`` (``center=""``: the whole queue) and the
  agents ``ivr_agents{center,state}``, ``ivr_reservations{status}``; from the engine
  ``ivr_event_loop_lag_seconds``, ``ivr_calls_in_progress``, ``ivr_call_records_unsaved``, and
  the counters kept by others: ``ivr_call_records_lost_total``,
  ``ivr_queue_events_dropped_total``.

Labels never hold a call id, a channel or a phone number: queues, centers, priorities, states,
flows, nodes and exits are names from the configuration and the flows; an ARI route is the
path's template (``/channels/{id}/play/{id}``).  With one pool of agents ``center`` is ``""``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ivr.stats.live import RESERVATION_KEYS, LiveStats

__all__ = ["Metrics", "EngineGauges", "WAIT_BUCKETS", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WAIT_BUCKETS = (5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0)
ARI_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclasses.dataclass(frozen=True, slots=True)
class EngineGauges:
    """How to read the engine's own figures at scrape time (``ivr.app`` fills it in)."""

    loop_lag: Callable[[], float]
    calls_in_progress: Callable[[], int]
    records_unsaved: Callable[[], int]
    records_lost: Callable[[], int]
    events_dropped: Callable[[], int] | None = None       # None: no queues, no event log


class Metrics:
    """The engine's metrics; ``service_level``: the wallboard's threshold in seconds (a bucket
    of the answer-wait histogram)."""

    def __init__(self, *, service_level: float = 20.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.stats: LiveStats | None = None
        self.engine: EngineGauges | None = None
        buckets = tuple(sorted({*WAIT_BUCKETS, float(service_level)}))
        r = self.registry
        self.answered_total = Counter("ivr_queue_answered", "Callers put through to an agent",
                                ["queue", "center"], registry=r)
        self.abandoned_total = Counter("ivr_queue_abandoned", "Callers who left the line unserved "
                                 "(hung up, told nobody could take the call after max_wait, lost)",
                                 ["queue", "center"], registry=r)
        self.callbacks_total = Counter("ivr_queue_callbacks", "Callers who left the line for a "
                                 "callback reservation", ["queue", "center"], registry=r)
        self.answer_wait = Histogram("ivr_queue_answer_wait_seconds", "How long answered callers "
                                     "waited in line, from their first arrival", ["queue"],
                                     buckets=buckets, registry=r)
        self.calls = Counter("ivr_calls", "Calls ended, by flow and outcome", ["flow", "outcome"],
                             registry=r)
        self.node_exits = Counter("ivr_flow_node_exits", "How calls left each node of a flow",
                                  ["flow", "node", "exit"], registry=r)
        self.shed = Counter("ivr_calls_shed", "New calls turned away with the busy message",
                            ["why"], registry=r)
        self.ari = Histogram("ivr_ari_request_seconds", "ARI requests, by method and route",
                             ["method", "route"], buckets=ARI_BUCKETS, registry=r)
        self.store_errors = Counter("ivr_store_errors", "Store operations that failed",
                                    ["operation"], registry=r)
        r.register(_Gauges(self))

    # -- fed as things happen --------------------------------------------------------------------

    def follow(self, stats: LiveStats) -> None:
        """Read the queues' gauges from ``stats`` and count each wait as it ends."""
        self.stats = stats
        stats.watch(self)

    def answered(self, queue: str, center: str | None, wait: float | None) -> None:
        """``QueueOutcomes``: a caller put through to an agent after ``wait`` seconds."""
        self.answered_total.labels(queue, center or "").inc()
        if wait is not None:
            self.answer_wait.labels(queue).observe(wait)

    def left(self, queue: str, center: str | None, how: str, wait: float | None) -> None:
        """``QueueOutcomes``: a caller left the line unserved (``abandoned``) or for a
        callback (``callback``)."""
        counter = self.callbacks_total if how == "callback" else self.abandoned_total
        counter.labels(queue, center or "").inc()

    def call_ended(self, record: Any) -> None:
        """A finished call's record (``ivr.call.CallRecord``): its outcome and node exits."""
        flow = record.flow or ""
        self.calls.labels(flow, str(record.outcome) if record.outcome else "unknown").inc()
        for node, how in zip(record.nodes, record.exits, strict=False):
            self.node_exits.labels(flow, node, str(how)).inc()

    def call_shed(self, why: str) -> None:
        """A new call turned away: ``max_calls`` or ``loop_lag``."""
        self.shed.labels(why).inc()

    def ari_request(self, method: str, route: str, seconds: float) -> None:
        """``AriClient.on_request``: ``route`` is the path's template, never an id."""
        self.ari.labels(method, route).observe(seconds)

    def store_error(self, operation: str) -> None:
        self.store_errors.labels(operation).inc()

    def text(self) -> bytes:
        """Every metric in the text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)


class _Gauges(Collector):
    """The gauges, read at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []                       # read at scrape time: nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        stats, engine = self.metrics.stats, self.metrics.engine
        if stats is not None:
            waiting, oldest, agents = stats.line_counts()
            g = GaugeMetricFamily("ivr_queue_waiting_calls", "Callers waiting in line now",
                                  labels=["queue", "center", "priority"])
            for (queue, center, priority), n in sorted(waiting.items(), key=_key):
                g.add_metric([queue, center or "", priority], n)
            yield g
            g = GaugeMetricFamily("ivr_queue_oldest_wait_seconds", "The longest current wait "
                                  "(center \"\": the whole queue)", labels=["queue", "center"])
            for (queue, center), age in sorted(oldest.items(), key=_key):
                g.add_metric([queue, center or ""], round(age, 3))
            yield g
            g = GaugeMetricFamily("ivr_agents", "Agents by state now", labels=["center", "state"])
            for (center, state), n in sorted(agents.items(), key=_key):
                g.add_metric([center or "", state], n)
            yield g
            g = GaugeMetricFamily("ivr_reservations", "Callback reservations (failed and done: "
                                  "since local midnight)", labels=["status"])
            for status in RESERVATION_KEYS:
                g.add_metric([status], stats.reservations.get(status, 0))
            yield g
        if engine is not None:
            yield GaugeMetricFamily("ivr_event_loop_lag_seconds", "How late the event loop runs "
                                    "(new calls are shed above engine.max_loop_lag)",
                                    value=engine.loop_lag())
            yield GaugeMetricFamily("ivr_calls_in_progress", "Calls being served now",
                                    value=engine.calls_in_progress())
            yield GaugeMetricFamily("ivr_call_records_unsaved", "Finished calls' records kept in "
                                    "memory until the store takes them",
                                    value=engine.records_unsaved())
            yield CounterMetricFamily("ivr_call_records_lost", "Call records the store never took "
                                      "(dropped beyond max_unsaved)", value=engine.records_lost())
            if engine.events_dropped is not None:
                yield CounterMetricFamily("ivr_queue_events_dropped", "Queue events dropped while "
                                          "the store refused them", value=engine.events_dropped())


def _key(item: tuple[tuple[Any, ...], Any]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in item[0])
