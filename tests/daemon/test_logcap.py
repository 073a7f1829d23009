"""Each job's log is capped on disk: the head and the latest output kept, the middle freed, the drop recorded.

A real job writes far more than the cap through its own O_APPEND descriptor; the daemon punches a hole in the
middle of its log once a second. The file keeps its size; its blocks on disk stay near the cap; readers
(`copy_kept`, what `hostpipe logs` uses) show the kept bytes and one line where bytes were dropped.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import threading
import time
from pathlib import Path

from hostpipe.daemon.logcap import cap_log
from hostpipe.daemon.logholes import copy_kept, dropped_bytes, marker, segments
from tests.conftest import Daemon, wait_for

CAP = 1 << 20
BURSTS = 40
BURST = 400_000
"""Numbers per burst: `seq` writes about 3.3 MB for each burst, 133 MB in all, at most five bursts a second."""


def on_disk(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def expected_output() -> bytes:
    return b"".join(
        subprocess.run(["seq", str(b * BURST), str((b + 1) * BURST - 1)], capture_output=True, check=True).stdout
        for b in range(BURSTS)
    )


def test_a_job_writing_far_more_than_the_cap_keeps_its_log_bounded(make_daemon):
    """133 MB of output under a 1 MiB cap: the log takes about the cap on disk, and its record says how much went."""
    daemon: Daemon = make_daemon('log_cap = "1MiB"\nmax_concurrent = 4\nkill_grace = "1s"\n[runtimes.docker]\n')
    script = f"for b in $(seq 0 {BURSTS - 1}); do seq $((b*{BURST})) $((b*{BURST}+{BURST - 1})); sleep 0.2; done"
    daemon.write(f"HOSTPIPE_POD=ns/chatty docker run test/x sh -c '{script}'\n")
    (running,) = wait_for(lambda: daemon.ps("--state", "running"))
    log = Path(running["log"])
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            with contextlib.suppress(FileNotFoundError):
                peak = max(peak, on_disk(log))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        (record,) = daemon.wait_records(1, timeout=120)
    finally:
        stop.set()
        watcher.join()
    output = expected_output()
    size = os.stat(log).st_size
    # The tick after the job's end looks at its log once more; the record follows.
    final = wait_for(lambda: (r := daemon.ps()[0])["log_dropped"] == size - _kept(log) and r, timeout=10)
    assert record["state"] == "succeeded"
    with log.open("rb") as kept:
        banner = kept.readline()  # the stand-in prints its argv first, with the --cidfile hostpipe adds
    assert banner.startswith(b"docker run --cidfile=") and banner.endswith(f"{script}\n".encode())
    assert size == len(banner) + len(output), "the job wrote everything; the file keeps its size"
    assert on_disk(log) <= CAP + 8192, "after the last look the log holds at most the cap"
    # Between two looks (a second) a job adds what it writes in that second: here at most some 17 MB of 133.
    assert peak < 45 << 20, f"the log took {peak} bytes on disk at most"
    assert final["log_dropped"] > 100_000_000
    shown = io.BytesIO()
    end = copy_kept(log, 0, shown)
    assert end == size
    head, tail = shown.getvalue().split(marker(final["log_dropped"]))
    written = banner + output
    assert written.startswith(head) and len(head) >= CAP // 4 - 4096
    assert written.endswith(tail) and len(tail) >= CAP * 3 // 4 - 4096
    assert tail.endswith(f"{BURSTS * BURST - 1}\n".encode())
    events = [e for e in daemon.events() if e["event"] == "log_capped"]
    assert [(e["job"], e["cap"]) for e in events] == [(record["id"], CAP)]
    assert daemon.stop() == 0
    print(f"\nwritten {size} bytes; on disk {on_disk(log)} after, {peak} at most; dropped {final['log_dropped']}")


def _kept(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.fstat(fd).st_size - dropped_bytes(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def test_cap_leaves_an_appending_writer_writing_at_the_end(tmp_path):
    """A process still appending after the punch keeps writing at the end; nothing it writes lands in the hole."""
    log = tmp_path / "1.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, b"head\n" + b"x" * (3 << 20))
        dropped = cap_log(log, 256 << 10)
        os.write(fd, b"after the cap\n")
    finally:
        os.close(fd)
    assert dropped is not None and dropped > (2 << 20)
    shown = io.BytesIO()
    copy_kept(log, 0, shown)
    text = shown.getvalue()
    assert text.startswith(b"head\nxxxx") and text.endswith(b"xxxxafter the cap\n")
    assert marker(dropped) in text and b"\0" not in text
    assert on_disk(log) <= (256 << 10) + 8192


def test_a_log_under_the_cap_is_left_alone(tmp_path):
    """A log shorter than the cap is only looked at: no hole, nothing recorded."""
    log = tmp_path / "1.log"
    log.write_bytes(b"y" * 100_000)
    assert cap_log(log, 256 << 10) is None
    fd = os.open(log, os.O_RDONLY)
    try:
        assert list(segments(fd, 0, 100_000)) == [(0, 100_000, True)]
    finally:
        os.close(fd)


def test_following_a_capped_log_shows_each_dropped_range_once(tmp_path):
    """`logs -f` passes back the offset it reached: a hole punched later past that offset is shown once, as dropped."""
    log = tmp_path / "1.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    shown = io.BytesIO()
    try:
        os.write(fd, b"a" * 100_000)
        offset = copy_kept(log, 0, shown)
        os.write(fd, b"b" * (2 << 20))
        dropped = cap_log(log, 256 << 10)
        os.write(fd, b"end\n")
        offset = copy_kept(log, offset, shown)
        offset = copy_kept(log, offset, shown)
    finally:
        os.close(fd)
    assert dropped is not None
    text = shown.getvalue()
    assert offset == os.stat(log).st_size
    assert text.count(b"dropped here") == 1 and text.startswith(b"a" * 100_000) and text.endswith(b"b" * 10 + b"end\n")
    # The hole began inside what the first call had shown: the marker stands for the dropped bytes past it.
    fd = os.open(log, os.O_RDONLY)
    try:
        ((start, end, _),) = [s for s in segments(fd, 0, offset) if not s[2]]
    finally:
        os.close(fd)
    assert start < 100_000 < end and marker(end - 100_000) in text
    assert len(text) - len(marker(end - 100_000)) == offset - (end - 100_000)
