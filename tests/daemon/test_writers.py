"""Hostile and careless writers on a real FIFO: no writer can change another writer's line in any case a reader
can tell apart (see docs/reliability.md, "the framing rule")."""

from __future__ import annotations

import os
import threading
import time

from tests.conftest import Daemon, wait_for, write_line


def _write_raw(daemon: Daemon, data: bytes) -> None:
    fd = os.open(daemon.pipe, os.O_WRONLY)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


# Every refusal here is a record of its own (no rate-limit summaries), so that each byte can be found.
UNLIMITED = 'kill_grace = "1s"\nrefused_per_pod = 100000\nrefused_overall = 100000\n[runtimes.docker]\n'


def test_two_writers_without_newlines_at_the_same_moment_never_run(make_daemon):
    """Two pods leave out the newline at once, ten times over: whether read apart or together, nothing runs."""
    daemon: Daemon = make_daemon(UNLIMITED)
    for trial in range(10):
        barrier = threading.Barrier(2)

        def writer(name: str, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            _write_raw(daemon, f"docker run test/{name}".encode())

        threads = [threading.Thread(target=writer, args=(f"t{trial}{side}",)) for side in "ab"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        time.sleep(0.05)
    wait_for(daemon.ps, timeout=10)
    time.sleep(0.5)
    records = daemon.ps()
    assert {r["state"] for r in records} == {"refused"}
    assert {r["rule"] for r in records} == {"unterminated"}
    # Every byte written is in some record: 20 writes, whatever the reads made of them.
    assert "".join(r["line"] for r in records).count("docker run test/") == 20


def test_an_unterminated_line_cannot_swallow_the_next_pods_line(make_daemon):
    """Pod A forgets its newline; pod B's line, written after, runs as B wrote it, secrets not in A's job."""
    daemon: Daemon = make_daemon()
    _write_raw(daemon, b"HOSTPIPE_POD=ns/a docker run test/x echo")
    time.sleep(0.2)
    write_line(daemon.pipe, "HOSTPIPE_POD=ns/b docker run --env=TOKEN=s3cret test/x true\n")
    first, second = daemon.wait_records(2)
    assert (first["pod"], first["state"], first["rule"]) == ("ns/a", "refused", "unterminated")
    assert "s3cret" not in first["line"]
    assert (second["pod"], second["state"]) == ("ns/b", "succeeded")
    assert second["argv"] == ["docker", "run", "--env=TOKEN=s3cret", "test/x", "true"]


TRICKLED = b"docker run test/trickled-line-that-never-ends"


def test_a_trickled_byte_taken_alone_is_cut_off_and_never_reaches_a_later_line(make_daemon):
    """A byte without a newline that the daemon took alone is its own refused record; the next line is intact."""
    daemon: Daemon = make_daemon()
    fd = os.open(daemon.pipe, os.O_WRONLY)
    try:
        for count, byte in enumerate(TRICKLED[:5], start=1):
            os.write(fd, bytes([byte]))
            wait_for(lambda count=count: len(daemon.ps()) == 2 * count - 1, timeout=10)
            write_line(daemon.pipe, f"HOSTPIPE_ID=n{count} docker run test/x\n")
            wait_for(lambda count=count: len(daemon.ps()) == 2 * count, timeout=10)
    finally:
        os.close(fd)
    records = daemon.wait_records(10)
    assert [(r["line"], r["rule"]) for r in records[::2]] == [(chr(b), "unterminated") for b in TRICKLED[:5]]
    assert [(r["line"], r["state"]) for r in records[1::2]] == [
        (f"HOSTPIPE_ID=n{i} docker run test/x", "succeeded") for i in range(1, 6)
    ]


def test_a_byte_a_second_writer_beside_normal_writers_changes_no_line_but_by_the_documented_race(make_daemon):
    """A writer trickling a byte every 0.3 s while 80 pods write lines: every byte of both is in exactly one
    record, and a normal line can differ from what its pod wrote only by trickled bytes that reached the pipe
    just before it within one take (the race no reader can tell apart, docs/reliability.md)."""
    daemon: Daemon = make_daemon(UNLIMITED)
    stop = threading.Event()
    sent = bytearray()

    def trickle() -> None:
        fd = os.open(daemon.pipe, os.O_WRONLY)
        try:
            for byte in TRICKLED:
                if stop.is_set():
                    return
                os.write(fd, bytes([byte]))
                sent.append(byte)
                time.sleep(0.3)
        finally:
            os.close(fd)

    trickler = threading.Thread(target=trickle)
    trickler.start()
    for i in range(80):
        write_line(daemon.pipe, f"HOSTPIPE_ID=n{i} docker run test/x\n")
        time.sleep(0.05)
    stop.set()
    trickler.join(10)
    lines = [f"HOSTPIPE_ID=n{i} docker run test/x" for i in range(80)]
    wanted = sum(len(line) for line in lines) + len(sent)
    records = wait_for(
        lambda: (found := daemon.ps()) and sum(len(r["line"]) for r in found) >= wanted and found, timeout=30
    )
    assert sum(len(r["line"]) for r in records) == wanted, "every byte written is in exactly one record"
    stray = bytearray()
    intact = 0
    for record in records:
        text = str(record["line"])
        owner = next((line for line in lines if text.endswith(line)), None)
        if owner is None:
            stray += text.encode()  # trickled bytes cut off on their own
        elif text == owner:
            intact += 1
            assert record["state"] == "succeeded"
        else:
            stray += text[: -len(owner)].encode()  # the race: trickled bytes ahead of a line in one take
    assert bytes(stray) == bytes(sent), "no normal writer's byte ever ended up in another line"
    print(f"{intact} of 80 lines intact; {80 - intact} carried trickled bytes taken with them")


def test_writes_far_over_pipe_buf_are_refused_and_short_lines_beside_them_survive(make_daemon):
    """256 KiB writes between 400 short lines: each big write is refused whole, every short line runs."""
    daemon: Daemon = make_daemon()
    big = b"docker run test/x " + b"A" * (256 * 1024) + b"\n"
    done = threading.Event()

    def big_writer() -> None:
        for _ in range(8):
            _write_raw(daemon, big)
            time.sleep(0.05)
        done.set()

    thread = threading.Thread(target=big_writer)
    thread.start()
    for i in range(400):
        write_line(daemon.pipe, f"HOSTPIPE_ID=s{i} docker run test/x\n")
        if i % 50 == 0:
            time.sleep(0.02)
    thread.join(30)

    def all_in() -> list[dict[str, object]] | None:
        records = daemon.ps()
        short = [r for r in records if r["client_id"] and r["state"] not in ("queued", "running")]
        overlong = sum(int(str(r["reason"]).split()[3]) for r in records if r["rule"] == "line-too-long")
        return records if len(short) == 400 and overlong >= 8 * (len(big) - 1) else None

    records = wait_for(all_in, timeout=60)
    short = [r for r in records if r["client_id"]]
    assert sorted(r["line"] for r in short) == sorted(f"HOSTPIPE_ID=s{i} docker run test/x" for i in range(400))
    assert {r["state"] for r in short} == {"succeeded"}
    # A write over PIPE_BUF is not atomic: the kernel may hand it over in parts, which are refused as parts.
    sizes = [int(str(r["reason"]).split()[3]) for r in records if r["rule"] == "line-too-long"]
    assert sum(sizes) == 8 * (len(big) - 1) + (len(sizes) - 8) * 0
