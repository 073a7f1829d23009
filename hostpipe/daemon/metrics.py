"""Prometheus metrics of the daemon: an events listener that counts, a textfile written each tick, an HTTP port.

Counting is on the hot path (an event for every line read), so an event adds one to a plain int or dict
entry (`Counts`), with no lock and no call into prometheus_client; the one histogram is observed once per job
start. Everything that reads the counts all at once runs off the event loop: the HTTP server (`--metrics
ADDR`) answers scrapes on its own threads, and the node_exporter textfile (`--metrics-textfile PATH`) is
rendered and written on a worker thread once per tick, a temporary file renamed over the old one so that the
collector never reads half a file. A write that fails is logged once per new error and retried at the next
tick; nothing here can stop the daemon.

Gauges that describe the daemon at a moment (running, queued, the store's health and backlog) are set from
the executor and the store at each job event and each tick. Refused lines counted into a rate-limit summary
and store errors are copied from their owners at the tick. docs/metrics.md lists the names, types and labels.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import queue
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The CLI marks ssl absent to keep OpenSSL out of every daemon (hostpipe.cli.main); prometheus_client imports
# it whatever it serves, so a daemon asked for metrics loads it (it serves plain HTTP all the same).
if "ssl" in sys.modules and sys.modules["ssl"] is None:
    del sys.modules["ssl"]

import prometheus_client
import structlog
from prometheus_client import CollectorRegistry, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from hostpipe import __version__
from hostpipe.core.job import JobState, Outcome
from hostpipe.core.listen import ListenAddress
from hostpipe.daemon.events import Listener

if TYPE_CHECKING:
    from hostpipe.daemon.executor import Job
    from hostpipe.daemon.server import Server
    from hostpipe.daemon.store import NewJob

log = structlog.get_logger("hostpipe.metrics")

NODE_LABELS = {"NODENAME": "node", "JIRIAF_SITE": "site", "JIRIAF_NODETYPE": "node_type"}
"""Variables of the daemon's environment that become labels of every metric (when set and not empty)."""

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)
"""Seconds from a line's arrival to its job's process running: milliseconds when a slot is free, up to the
wait in the queue (or a restart) when none is."""

TEXTFILE_MODE = 0o644
"""node_exporter usually runs as another user: the file is readable by all, whatever the daemon's umask."""


class MetricsError(OSError):
    """The metrics endpoint cannot be served (the address is in use or cannot be bound)."""


def node_labels(environ: Mapping[str, str]) -> dict[str, str]:
    """The constant labels that say which node (and JIRIAF site and node type) the daemon serves."""
    return {label: environ[name] for name, label in NODE_LABELS.items() if environ.get(name)}


def write_textfile(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole: a temporary file in the same folder, renamed over it."""
    # A leading dot and no .prom ending: the textfile collector never reads the temporary file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, TEXTFILE_MODE)
        try:
            os.fchmod(fd, TEXTFILE_MODE)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.rename(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class Counts:
    """The counts and gauges the daemon's events keep, as plain numbers; a collector that exposes them.

    An event adds one to an int or to a dict entry, on the event loop, which is much cheaper than a
    prometheus_client counter (a lock and several calls each). `collect` runs on a scrape's or the textfile's
    thread; it copies each dict (one C-level copy under the GIL) before it reads it.
    """

    def __init__(self, const: Mapping[str, str]) -> None:
        self._names = list(const)
        self._values = list(const.values())
        self.lines = 0
        """Lines recorded one by one; `summarised` holds the ones counted into rate-limit summaries."""
        self.refused: dict[str, int] = {}
        self.summarised: dict[str, int] = {}
        self.accepted: dict[str, int] = {}
        self.finished: dict[tuple[str, str], int] = {}
        self.running = 0
        self.queued = 0
        self.store_healthy = 1
        self.store_backlog = 0
        self.store_errors: dict[str, int] = {}

    def describe(self) -> list[Any]:
        return []  # nothing to check at registration: the names are fixed here

    def collect(self) -> list[Any]:
        names, values = self._names, self._values
        summarised = dict(self.summarised)

        def family(kind: Any, name: str, doc: str, *labels: str) -> Any:
            return kind(name, doc, labels=[*names, *labels])

        lines = family(CounterMetricFamily, "hostpipe_lines", "Lines read from the pipe, accepted or refused.")
        lines.add_metric(values, self.lines + sum(summarised.values()))
        refusals = family(
            CounterMetricFamily, "hostpipe_refusals", "Lines refused, by the rule that refused them.", "rule"
        )
        refused = dict(self.refused)
        for rule in sorted(refused.keys() | summarised.keys()):
            refusals.add_metric([*values, rule], refused.get(rule, 0) + summarised.get(rule, 0))
        accepted = family(
            CounterMetricFamily, "hostpipe_jobs_accepted", "Lines accepted as jobs, by runtime.", "runtime"
        )
        for runtime, count in sorted(dict(self.accepted).items()):
            accepted.add_metric([*values, runtime], count)
        finished = family(
            CounterMetricFamily,
            "hostpipe_jobs_finished",
            "Jobs that reached a final state, by state and runtime.",
            "state",
            "runtime",
        )
        for (state, runtime), count in sorted(dict(self.finished).items()):
            finished.add_metric([*values, state, runtime], count)
        running = family(GaugeMetricFamily, "hostpipe_jobs_running", "Jobs holding a slot (starting or running).")
        running.add_metric(values, self.running)
        queued = family(GaugeMetricFamily, "hostpipe_jobs_queued", "Accepted jobs waiting for a free slot.")
        queued.add_metric(values, self.queued)
        healthy = family(
            GaugeMetricFamily, "hostpipe_store_healthy", "1 while the store takes writes, 0 while it is degraded."
        )
        healthy.add_metric(values, self.store_healthy)
        backlog = family(
            GaugeMetricFamily, "hostpipe_store_backlog", "Batched changes handed to the store and not yet committed."
        )
        backlog.add_metric(values, self.store_backlog)
        errors = family(
            CounterMetricFamily, "hostpipe_store_errors", "Failed store writes and writer ends, by kind.", "kind"
        )
        for kind, count in sorted(dict(self.store_errors).items()):
            errors.add_metric([*values, kind], count)
        return [lines, refusals, accepted, finished, running, queued, healthy, backlog, errors]


class Metrics(Listener):
    """The daemon's metrics, kept up to date from its events and exposed as the configuration asks."""

    def __init__(self, server: Server) -> None:
        self._server = server
        config = server.config
        # The daemon changes its working folder at startup: a relative path is taken from where it was started.
        self.textfile = config.metrics_textfile.absolute() if config.metrics_textfile is not None else None
        self.address: ListenAddress | None = None
        # No *_created series: the start time is a gauge of its own.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry = CollectorRegistry()
        const = node_labels(server.environ)
        self.counts = Counts(const)
        registry.register(self.counts)
        names, values = tuple(const), tuple(const.values())
        # Seldom-changed values and the histogram (one observation per job start) are prometheus_client's own.
        latency = Histogram(
            "hostpipe_line_to_start_seconds",
            "Seconds from a line's arrival to its job's process running, by runtime.",
            (*names, "runtime"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._latency: dict[str, Any] = {}
        self._latency_of = functools.partial(latency.labels, *values)
        info = Info("hostpipe_daemon", "The daemon's version and the policy in force.", names, registry=registry)
        self._info = info.labels(*values) if values else info
        start = Gauge("hostpipe_daemon_start_time_seconds", "When the daemon started.", names, registry=registry)
        (start.labels(*values) if values else start).set(server.started_at)
        self._policy: str | None = None
        self._writer: threading.Thread | None = None
        self._to_write: queue.SimpleQueue[Path] = queue.SimpleQueue()
        self._writing = False
        self._write_error: str | None = None
        if config.metrics_address is not None:
            self._serve(config.metrics_address)

    # -- events (on the event loop) ---------------------------------------------------------------------------

    def line_recorded(self, job_id: int, record: NewJob, job: Job | None) -> None:
        counts = self.counts
        counts.lines += 1
        if record.state is JobState.REFUSED:
            rule = record.rule or ""
            counts.refused[rule] = counts.refused.get(rule, 0) + 1
        elif job is not None:
            runtime = job.allowed.runtime
            counts.accepted[runtime] = counts.accepted.get(runtime, 0) + 1

    def job_started(self, job: Job) -> None:
        runtime = job.allowed.runtime
        histogram = self._latency.get(runtime)
        if histogram is None:
            histogram = self._latency[runtime] = self._latency_of(runtime)
        histogram.observe(max(0.0, time.time() - job.submitted_at))
        self._jobs()

    def job_finished(self, job: Job, outcome: Outcome) -> None:
        key = (str(outcome.state), job.allowed.runtime)
        self.counts.finished[key] = self.counts.finished.get(key, 0) + 1
        self._jobs()

    def tick(self, now: float) -> None:
        server, counts = self._server, self.counts
        self._jobs()
        store = server.store
        counts.store_healthy = 0 if store.degraded else 1
        counts.store_backlog = store.backlog
        counts.store_errors = dict(store.errors)
        counts.summarised = dict(server.refusals.summarised)
        if server.loaded.source != self._policy:
            self._policy = server.loaded.source
            self._info.info({"version": __version__, "policy": self._policy})
        if self.textfile is not None and not self._writing:
            self._write(self.textfile)

    def _jobs(self) -> None:
        executor = self._server.executor
        self.counts.running = executor.running_count
        self.counts.queued = executor.queued_count

    # -- exposing -------------------------------------------------------------------------------------------

    def _serve(self, address: ListenAddress) -> None:
        try:
            httpd, _ = prometheus_client.start_http_server(address.port, addr=address.host, registry=self.registry)
        except OSError as error:
            raise MetricsError(
                f"cannot serve metrics on {address}: {error.strerror or error}; choose another address with --metrics"
            ) from error
        self.address = ListenAddress(address.host, httpd.server_address[1])
        log.info("metrics_serving", address=str(self.address), url=f"http://{self.address}/metrics")

    def _write(self, path: Path) -> None:
        if self._writer is None:
            # A daemon thread: a write stuck on a hung file system must not keep the daemon from exiting.
            loop = asyncio.get_running_loop()
            self._writer = threading.Thread(target=self._writes, args=(loop,), name="hostpipe-metrics", daemon=True)
            self._writer.start()
        self._writing = True
        self._to_write.put(path)

    def _writes(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the writer thread: render and write each file asked for, and tell the loop how it went."""
        while True:
            path = self._to_write.get()
            error: BaseException | None = None
            try:
                write_textfile(path, generate_latest(self.registry))
            except Exception as failed:  # reported on the loop; the thread goes on
                error = failed
            try:
                loop.call_soon_threadsafe(self._written, error)
            except RuntimeError:
                return  # the loop is closed: the daemon is stopping

    def _written(self, error: BaseException | None) -> None:
        self._writing = False
        if error is None:
            if self._write_error is not None:
                log.info("metrics_textfile_written", path=str(self.textfile), after=self._write_error)
                self._write_error = None
            return
        text = f"{error.strerror or error}" if isinstance(error, OSError) else repr(error)
        if text != self._write_error:
            log.error(
                "metrics_textfile_failed",
                path=str(self.textfile),
                error=text,
                note="the daemon serves on; the file is written again at every tick",
            )
        self._write_error = text
