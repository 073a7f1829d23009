"""Prometheus metrics of a real `hostpipe serve`: the node_exporter textfile and the loopback HTTP endpoint.

Lines go into the real FIFO; both expositions are parsed with prometheus_client's own parser and their counts
compared with what was written.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hostpipe import __version__ as hostpipe_version
from tests.conftest import DEFAULT_POLICY, Daemon, hostpipe, wait_for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

NODE_ENV = {"NODENAME": "vk-node-7", "JIRIAF_SITE": "nersc", "JIRIAF_NODETYPE": "cpu"}
NODE_LABELS = {"node": "vk-node-7", "site": "nersc", "node_type": "cpu"}


def parse(text: str) -> Samples:
    """Every sample by name and labels, without the node's constant labels (checked on their own)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k not in NODE_LABELS))
            samples[(sample.name, labels)] = sample.value
    return samples


def by(samples: Samples, name: str, label: str) -> dict[str, float]:
    """The samples of `name` keyed by one label's value."""
    return {dict(labels)[label]: value for (n, labels), value in samples.items() if n == name}


def by_two(samples: Samples, name: str, first: str, second: str) -> dict[tuple[str, str], float]:
    return {(dict(lb)[first], dict(lb)[second]): value for (n, lb), value in samples.items() if n == name}


def scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        return response.read().decode()  # type: ignore[no-any-return]


def http_address(daemon: Daemon) -> str:
    """Where the daemon serves its metrics (it asked the kernel for a free port), from its latest log event."""
    serving = wait_for(lambda: [e for e in daemon.events() if e.get("event") == "metrics_serving"])
    return str(serving[-1]["address"])


def textfile(path: Path) -> Samples | None:
    try:
        return parse(path.read_text())
    except FileNotFoundError:
        return None


def settled(read: Any, lines: int) -> Samples:
    """Wait until an exposition has counted `lines` lines and no job holds a slot; return its samples."""

    def ready() -> Samples | None:
        samples = read()
        if not samples or samples.get(("hostpipe_lines_total", ())) != lines:
            return None
        return samples if samples.get(("hostpipe_jobs_running", ())) == 0 else None

    return wait_for(ready, timeout=20, interval=0.1)  # type: ignore[no-any-return]


def test_both_expositions_count_lines_jobs_refusals_and_latency_exactly(make_daemon, tmp_path):
    """Accepted, failing and refused lines are counted by state, runtime and rule, alike in the file and over HTTP."""
    prom = tmp_path / "textfile" / "hostpipe.prom"
    prom.parent.mkdir()
    daemon: Daemon = make_daemon(start=False)
    daemon.env.update(NODE_ENV)
    daemon.start("--metrics-textfile", str(prom), "--metrics", "127.0.0.1:0")
    address = http_address(daemon)
    lines = [
        "docker run test/x true",
        "docker run test/x true",
        "docker run test/x false",
        "podman run test/x true",
        "sh -c x",
        "singularity run x",
        "docker run x > out",
        "docker run --privileged x",
    ]
    for line in lines:
        daemon.write(line + "\n")
    daemon.wait_records(len(lines))
    for samples in (settled(lambda: textfile(prom), len(lines)), settled(lambda: parse(scrape(address)), len(lines))):
        assert by(samples, "hostpipe_refusals_total", "rule") == {"program": 2, "redirection": 1, "privileged": 1}
        assert by(samples, "hostpipe_jobs_accepted_total", "runtime") == {"docker": 3, "podman": 1}
        assert by_two(samples, "hostpipe_jobs_finished_total", "state", "runtime") == {
            ("succeeded", "docker"): 2,
            ("failed", "docker"): 1,
            ("succeeded", "podman"): 1,
        }
        assert by(samples, "hostpipe_line_to_start_seconds_count", "runtime") == {"docker": 3, "podman": 1}
        docker_buckets = {
            dict(lb)["le"]: v
            for (n, lb), v in samples.items()
            if n == "hostpipe_line_to_start_seconds_bucket" and dict(lb)["runtime"] == "docker"
        }
        assert docker_buckets["+Inf"] == 3
        assert samples[("hostpipe_jobs_queued", ())] == 0
        assert samples[("hostpipe_store_healthy", ())] == 1
        (info,) = [labels for (name, labels) in samples if name == "hostpipe_daemon_info"]
        assert dict(info) == {"policy": str(daemon.policy), "version": hostpipe_version}
    text = prom.read_text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert {k: sample.labels[k] for k in NODE_LABELS} == NODE_LABELS, sample
    assert daemon.stop() == 0


def test_running_gauge_follows_a_job_and_returns_to_zero(make_daemon):
    """While a job sleeps the running gauge is 1 (at once over HTTP); once it ends it is 0 again."""
    daemon: Daemon = make_daemon(DEFAULT_POLICY, "--metrics", "127.0.0.1:0")
    address = http_address(daemon)
    daemon.write("docker run test/x sleep 2\n")
    wait_for(lambda: parse(scrape(address)).get(("hostpipe_jobs_running", ())) == 1, timeout=10)
    daemon.wait_records(1)
    samples = parse(scrape(address))
    assert samples[("hostpipe_jobs_running", ())] == 0, "the gauge is set when the job ends, not at the next tick"
    assert by_two(samples, "hostpipe_jobs_finished_total", "state", "runtime") == {("succeeded", "docker"): 1}
    (latency,) = by(samples, "hostpipe_line_to_start_seconds_sum", "runtime").values()
    assert 0 < latency < 2, "the latency is the line's wait to start, not the job's run"


def test_refused_lines_counted_into_a_summary_are_counted_by_their_rule(make_daemon, tmp_path):
    """Over the rate limit a pod's refusals share one record, yet every line is counted under its own rule."""
    policy = 'refused_per_pod = 2\nkill_grace = "1s"\n[runtimes.docker]\n'
    prom = tmp_path / "hostpipe.prom"
    daemon: Daemon = make_daemon(policy, "--metrics-textfile", str(prom))
    for i in range(5):
        daemon.write(f"HOSTPIPE_POD=ns/noisy sh -c {i}\n")
    daemon.write("HOSTPIPE_POD=ns/noisy docker run x > out\n")
    records = daemon.wait_records(3)
    assert len(records) == 3, "two records of their own and one summary"
    samples = settled(lambda: textfile(prom), 6)
    assert by(samples, "hostpipe_refusals_total", "rule") == {"program": 5, "redirection": 1}


@pytest.mark.parametrize("address", ["0.0.0.0:9464", "[::]:9464", "192.0.2.10:9464", "example.org:9464"])
def test_a_metrics_address_other_than_loopback_is_refused_in_one_sentence(make_daemon, address):
    """--metrics on a non-loopback address (or a name) is a usage error of one line; nothing is served."""
    daemon: Daemon = make_daemon(start=False)
    result = hostpipe("serve", *daemon.args(), "--metrics", address, env=daemon.env, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("hostpipe: --metrics: ")
    assert "127.0.0.1" in result.stderr
    assert not daemon.pipe.exists()


def test_a_remote_metrics_address_is_served_when_allowed(make_daemon):
    """--metrics-allow-remote lets the endpoint listen on every address, as the operator asked."""
    daemon: Daemon = make_daemon(DEFAULT_POLICY, "--metrics", "0.0.0.0:0", "--metrics-allow-remote")
    address = http_address(daemon)
    assert address.startswith("0.0.0.0:")
    port = address.rsplit(":", 1)[1]
    assert ("hostpipe_store_healthy", ()) in parse(scrape(f"127.0.0.1:{port}"))


def test_a_textfile_without_the_prom_ending_is_refused(make_daemon, tmp_path):
    """node_exporter reads only *.prom: any other name is a usage error before anything starts."""
    daemon: Daemon = make_daemon(start=False)
    result = hostpipe(
        "serve", *daemon.args(), "--metrics-textfile", str(tmp_path / "m.txt"), env=daemon.env, check=False
    )
    assert (result.returncode, result.stderr.count("\n")) == (2, 1)
    assert "*.prom" in result.stderr


def test_the_textfile_is_only_ever_seen_whole(make_daemon, tmp_path):
    """Read as fast as possible while lines stream in, the file is always whole, replaced by rename, mode 0644."""
    folder = tmp_path / "collector"
    folder.mkdir()
    prom = folder / "hostpipe.prom"
    umask = os.umask(0o077)  # as under a unit with UMask=0077: the file is still readable by node_exporter
    try:
        daemon: Daemon = make_daemon(DEFAULT_POLICY, "--metrics-textfile", str(prom))
    finally:
        os.umask(umask)
    wait_for(prom.exists)
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            daemon.write("docker run --privileged x\n")
            time.sleep(0.002)

    thread = threading.Thread(target=writer)
    thread.start()
    inodes, reads, other_names = set(), 0, set()
    deadline = time.monotonic() + 4
    try:
        while time.monotonic() < deadline:
            other_names |= {p.name for p in folder.glob("*.prom")} - {prom.name}
            try:
                fd = os.open(prom, os.O_RDONLY)
            except FileNotFoundError:
                pytest.fail("the file vanished between two writes")
            try:
                inodes.add(os.fstat(fd).st_ino)
                data = b""
                while chunk := os.read(fd, 65536):
                    data += chunk
            finally:
                os.close(fd)
            text = data.decode()
            assert text.endswith("\n") and "hostpipe_daemon_start_time_seconds" in text, "a partial file was read"
            parse(text)
            reads += 1
    finally:
        stop.set()
        thread.join()
    assert reads > 100
    assert len(inodes) >= 3, "each tick renames a new file over the old one"
    assert not other_names, "the temporary file never carries the .prom ending the collector reads"
    assert stat.S_IMODE(prom.stat().st_mode) == 0o644


def test_a_failing_textfile_write_is_logged_once_and_the_daemon_serves_on(make_daemon, tmp_path):
    """A textfile folder that is missing: one error event, lines still run; once it exists the file appears."""
    prom = tmp_path / "missing" / "hostpipe.prom"
    daemon: Daemon = make_daemon(DEFAULT_POLICY, "--metrics-textfile", str(prom))
    wait_for(lambda: [e for e in daemon.events() if e.get("event") == "metrics_textfile_failed"])
    daemon.write("docker run test/x true\n")
    (record,) = daemon.wait_records(1)
    assert record["state"] == "succeeded"
    time.sleep(2.5)  # more ticks, each failing the same way
    failed = [e for e in daemon.events() if e.get("event") == "metrics_textfile_failed"]
    assert len(failed) == 1 and failed[0]["path"] == str(prom)
    prom.parent.mkdir()
    samples = settled(lambda: textfile(prom), 1)
    assert by(samples, "hostpipe_jobs_accepted_total", "runtime") == {"docker": 1}
    wait_for(lambda: [e for e in daemon.events() if e.get("event") == "metrics_textfile_written"], timeout=5)
    assert daemon.stop() == 0


def test_a_killed_store_writer_is_counted_and_health_returns(make_daemon, tmp_path):
    """SIGKILL to the store writer counts one store error of kind `writer`; the health gauge is 1 again after."""
    prom = tmp_path / "hostpipe.prom"
    daemon: Daemon = make_daemon(DEFAULT_POLICY, "--metrics-textfile", str(prom))
    daemon.write("docker run test/x true\n")
    daemon.wait_records(1)
    daemon_pid = daemon.daemon_pid()
    children = Path(f"/proc/{daemon_pid}/task/{daemon_pid}/children").read_text().split()
    (writer,) = [int(c) for c in children if b"hostpipe.daemon.writer" in Path(f"/proc/{c}/cmdline").read_bytes()]
    os.kill(writer, signal.SIGKILL)
    daemon.write("docker run test/x true\n")
    daemon.wait_records(2, timeout=30)
    samples = settled(lambda: textfile(prom), 2)
    assert by(samples, "hostpipe_store_errors_total", "kind") == {"writer": 1}
    wait_for(lambda: (textfile(prom) or {}).get(("hostpipe_store_healthy", ())) == 1)


def test_metrics_cost_no_import_when_not_asked_for(tmp_path):
    """A daemon without metrics options never imports prometheus_client (nor the OpenSSL it brings)."""
    code = (
        "import sys; import hostpipe.cli.main; import hostpipe.cli.serve, hostpipe.daemon.server; "
        "print('prometheus_client' in sys.modules, sys.modules.get('ssl'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert result.stdout.split() == ["False", "None"]


def test_a_metrics_port_in_use_stops_the_start_with_one_line(make_daemon):
    """Another program listening on the port: `serve` says so in one line and exits 4 without serving the pipe."""
    daemon: Daemon = make_daemon(start=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = hostpipe("serve", *daemon.args(), "--metrics", f"127.0.0.1:{port}", env=daemon.env, check=False)
    assert result.returncode == 4
    assert result.stderr == (
        f"hostpipe: cannot serve metrics on 127.0.0.1:{port}: Address already in use; "
        "choose another address with --metrics\n"
    )
