"""The daemon's side of replies to pods (the protocol is `hostpipe.core.replies`).

A line that carries a reply key is admitted here when it is decided: a new key gets its reply folder at once
(one mkdir), a key that came before attaches its client to the job it names instead of running the line again,
and a key whose token does not match is refused. Once the line's record is committed the reply says so
(`job`, or the `result` of a refusal); while the job runs its output is relayed from its log, which the kernel
writes into the private state folder, into the reply's `out`; when it ends, `result` appears. Control lines
(cancel, attach, done) are acted on after the batch they came in is committed, and only with the token.

Costs stay off the hot path: a line without a key costs nothing here; a line with one costs a lookup (memory,
then the records' index) and a mkdir. Output is copied only for jobs whose client gave a key, in bounded
chunks on a timer that runs only while such a job runs. Replies are removed when their client says it has
read them (`done`), or `retention` after the job ended (the policy's one retention setting).

Everything written into the pipe's folder goes through `hostpipe.daemon.podfolder`: handles, O_NOFOLLOW,
files the daemon created itself, renames for whole files.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import heapq
import hmac
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from hostpipe.core.exitcodes import Exit, job_exit_code
from hostpipe.core.framing import Frame, Line
from hostpipe.core.grammar import parse_control
from hostpipe.core.job import JobState, Outcome, StopCause
from hostpipe.core.replies import (
    ALIVE,
    JOB_FILE,
    OUT_FILE,
    REPLIES_DIR,
    RESULT_FILE,
    ReplyKey,
    Result,
    accepted_text,
    is_nonce,
    result_message,
    result_text,
)
from hostpipe.core.request import PipeControl
from hostpipe.daemon import podfolder
from hostpipe.daemon.events import Listener
from hostpipe.daemon.podfolder import Identity, Unsafe
from hostpipe.daemon.publish import PublishedClient
from hostpipe.daemon.records import JobRecord, Reader
from hostpipe.daemon.schema import StoreError

if TYPE_CHECKING:
    from hostpipe.daemon.executor import Executor, Job
    from hostpipe.daemon.store import NewJob

log = structlog.get_logger("hostpipe.replies")

REPLIES_MODE = 0o711
"""Others may pass through `replies/` to a reply whose nonce they know, but not list it."""
REPLY_MODE = 0o711
FILE_MODE = 0o644
RELAY_PERIOD = 0.2
RELAY_CHUNK = 256 * 1024
"""Bytes copied per job per relay round; a job that writes faster is caught up over the next rounds."""
RELAY_ROUND = 4 * 1024 * 1024
"""Bytes copied per relay round for all jobs together, so that relaying never holds the loop for long."""
SWEEP_EVERY = 600.0
"""Seconds between walks through `replies/` for what the daemon does not know (a previous daemon's replies,
anything pods put there); each tick walks a bounded part of it."""
SWEEP_BUDGET = 200
STRAY_KEEP = 60.0
"""Seconds a reply to an attach with an unknown key is kept."""


@dataclass(frozen=True)
class Admission:
    """What a line's reply key means for it: record it with this nonce and token digest, or refuse it."""

    nonce: str | None = None
    digest: str | None = None
    rule: str | None = None
    reason: str | None = None


@dataclass
class Reply:
    """One reply folder the daemon serves."""

    nonce: str
    digest: str | None
    job_id: int | None = None
    """None until the line's record is committed (or for a stray reply, which names no job)."""
    ident: Identity | None = None
    """The folder as the daemon made or adopted it; a different folder under its name is not written into."""
    live: bool = True
    """The job has not ended, or its output and result are not all written yet."""
    log_path: Path | None = None
    out: int | None = None
    """The descriptor of `out`, which the daemon created: held while the job's output is relayed."""
    offset: int = 0
    ending: Result | None = None
    """The job's result, to write once everything its log holds has been relayed."""
    remove_at: float | None = None
    stray: bool = False
    broken: bool = False


class RepliesUnavailable(Exception):
    pass


class Replies(Listener):
    def __init__(self, *, retention: Callable[[], float], clock: Callable[[], float] = time.time) -> None:
        self._retention = retention
        self._clock = clock
        self._folder: int | None = None
        self._folder_path: Path | None = None
        self._replies: int | None = None
        self._replies_id: Identity | None = None
        self._state_dir: Path | None = None
        self._reader: Reader | None = None
        self._executor: Executor | None = None
        self.client: PublishedClient | None = None
        self._pipe_name = ""
        self._by_nonce: dict[str, Reply] = {}
        self._by_job: dict[int, Reply] = {}
        self._live: set[str] = set()
        """Nonces of replies whose job has not ended: while there is one, `alive` is rewritten every tick."""
        self._due: list[tuple[float, str]] = []
        """(remove_at, nonce), a heap; an entry whose reply has gone or changed its time is skipped."""
        self._relaying: set[str] = set()
        self._relay_timer: asyncio.TimerHandle | None = None
        self._beat = 0
        self._sweep: Iterator[os.DirEntry[str]] | None = None
        self._next_sweep = 0.0
        self._orphans: set[str] = set()
        """Replies of jobs a previous daemon left live: settled from the records once they are terminal."""
        self._warned: str | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------

    def open(
        self, folder: Path, pipe_name: str, state_dir: Path, executor: Executor, live: Sequence[JobRecord]
    ) -> None:
        """Take the pipe's folder, publish the client, and take back the replies of jobs that are still live."""
        self._folder_path = folder
        self._pipe_name = pipe_name
        self._state_dir = state_dir
        self._executor = executor
        self._open_folders()
        for record in live:
            if record.reply_nonce is None:
                continue
            reply = Reply(record.reply_nonce, record.token_hash, job_id=record.id)
            self._keep(reply)
            self._orphans.add(reply.nonce)
            self._adopt(reply)
        self._next_sweep = self._clock() + 1.0

    def _open_folders(self) -> None:
        assert self._folder_path is not None
        try:
            self._folder, _ = podfolder.open_folder(self._folder_path)
            self._replies, self._replies_id = podfolder.replace_with_folder(self._folder, REPLIES_DIR, REPLIES_MODE)
            os.fchmod(self._replies, REPLIES_MODE)
        except (OSError, Unsafe) as error:
            self._unavailable(f"{error}")
            return
        self._warned = None
        self.client = PublishedClient(self._folder, self._pipe_name)
        self.client.check()

    def _unavailable(self, why: str) -> None:
        if why != self._warned:
            log.error("replies_unavailable", folder=str(self._folder_path), error=why)
        self._warned = why
        self._release()

    def _release(self) -> None:
        for fd in (self._replies, self._folder):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._replies = self._folder = None
        if self.client is not None:
            self.client.close()
        self.client = None

    def close(self) -> None:
        """At shutdown, once the executor has recorded every job's end: write what is left, let go."""
        for _ in range(64):
            if not self._relaying:
                break
            self._relay_round(budget=None)
        if self._relay_timer is not None:
            self._relay_timer.cancel()
        for reply in self._by_nonce.values():
            self._close_out(reply)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._sweep = None
        self._release()

    # -- deciding a line ----------------------------------------------------------------------------------

    def admit(self, key: str, argv: Sequence[str] | None) -> Admission:
        """Decide what a line's reply key means before the line is recorded (see Admission)."""
        parsed = ReplyKey.parse(key)
        assert parsed is not None  # the grammar only passes keys of this form
        if self._replies is None:
            return Admission(
                rule="reply-unavailable",
                reason=(
                    "the daemon cannot write replies into the pipe's folder now, so the job could not report "
                    "back; the line was not run (the daemon's log says why)"
                ),
            )
        reply = self._by_nonce.get(parsed.nonce)
        if reply is not None and reply.stray:
            self._forget(reply, remove=True)
            reply = None
        try:
            record = self._lookup(parsed.nonce) if reply is None else None
        except RepliesUnavailable as error:
            return Admission(rule="reply-unavailable", reason=f"the records cannot be read to check the key: {error}")
        if reply is not None or record is not None:
            digest = reply.digest if reply is not None else record.token_hash if record is not None else None
            job_id = reply.job_id if reply is not None else record.id if record is not None else None
            if not _same(parsed.digest, digest):
                return Admission(
                    rule="reply-key-in-use",
                    reason=(
                        "the reply key's nonce belongs to another job, and the key's token is not that job's; "
                        "make a new key for a new job (the clients make one each time)"
                    ),
                )
            if reply is None and record is not None:
                self._attach_record(record)
            elif reply is not None:
                self._repair(reply)
            which = f"job {job_id}" if job_id is not None else "the job submitted just before"
            again = "" if record is None or argv is None or list(argv) == record.argv else " (with another command)"
            return Admission(
                rule="already-submitted",
                reason=(
                    f"this reply key was submitted before{again}, as {which}; the line was not run again, "
                    f"and its client is given {which}'s output and result"
                ),
            )
        try:
            ident = self._make(parsed.nonce)
        except (OSError, Unsafe) as error:
            return Admission(
                rule="reply-unsafe",
                reason=f"the reply folder for this key cannot be made safely ({error}); make a new key",
            )
        self._keep(Reply(parsed.nonce, parsed.digest, ident=ident))
        return Admission(nonce=parsed.nonce, digest=parsed.digest)

    def control_of(self, frame: Frame) -> PipeControl | None:
        """The control line a frame holds, when it holds one (the server acts on it after its batch commits)."""
        if not isinstance(frame, Line) or not frame.terminated or frame.data[:1] not in (b"{", b" ", b"\t"):
            return None
        return parse_control(frame.data)

    def apply(self, controls: Sequence[PipeControl]) -> None:
        """Act on a committed batch's control lines, in order; each needs its key's token."""
        done = {"cancel": 0, "attach": 0, "done": 0, "refused": 0}
        for control in controls:
            if self._apply(control):
                done[control.op] += 1
            else:
                done["refused"] += 1
        if controls:
            log.info("pipe_control", **{k: v for k, v in done.items() if v})

    def _apply(self, control: PipeControl) -> bool:
        parsed = ReplyKey.parse(control.reply)
        assert parsed is not None
        if parsed.token is None:
            return False
        reply = self._by_nonce.get(parsed.nonce)
        if reply is not None and reply.stray:
            reply = None
        try:
            record = self._lookup(parsed.nonce) if reply is None else None
        except RepliesUnavailable:
            return False
        digest = reply.digest if reply is not None else record.token_hash if record is not None else None
        job_id = reply.job_id if reply is not None else record.id if record is not None else None
        if reply is None and record is None:
            if control.op == "attach":
                self._stray(parsed)
                return True
            return False
        if not _same(parsed.digest, digest):
            log.warning("pipe_control_refused", op=control.op, job=job_id, why="the token is not the job's")
            return False
        if control.op == "cancel":
            job = self._executor.find(job_id) if self._executor is not None and job_id is not None else None
            if job is not None:
                job.logger.info("job_cancel_requested", by="its submitter, through the pipe")
                assert self._executor is not None
                self._executor.stop(job, StopCause.CANCEL)
            return True
        if control.op == "attach":
            if reply is not None:
                self._repair(reply)
            elif record is not None:
                self._attach_record(record)
            return True
        if reply is not None and not reply.live:
            self._forget(reply, remove=True)
        elif reply is None and record is not None and record.state.terminal:
            self._remove_top(parsed.nonce)  # a previous daemon's reply, not swept yet
        return True

    # -- events -------------------------------------------------------------------------------------------

    def line_recorded(self, job_id: int, record: NewJob, job: Job | None) -> None:
        if record.reply_nonce is None:
            return
        reply = self._by_nonce.get(record.reply_nonce)
        if reply is None or reply.job_id is not None:
            return
        reply.job_id = job_id
        self._by_job[job_id] = reply
        if job is None:
            message = result_message("refused", job_id, record.rule, record.argument, record.reason)
            reply.ending = Result("refused", int(Exit.REFUSED), job_id, rule=record.rule, message=message)
            self._finish(reply)
            return
        self._write(reply, JOB_FILE, accepted_text(job_id))

    def job_started(self, job: Job) -> None:
        reply = self._by_job.get(job.id)
        if reply is None or reply.broken:
            return
        reply.log_path = job.log_path
        self._write(reply, JOB_FILE, f"job={job.id}\nstate=running\n".encode())
        self._start_out(reply)

    def job_finished(self, job: Job, outcome: Outcome) -> None:
        reply = self._by_job.get(job.id)
        if reply is None:
            return
        self._orphans.discard(reply.nonce)
        state = str(outcome.state)
        message = result_message(state, job.id, None, None, outcome.reason)
        code = job_exit_code(state, outcome.exit_code, outcome.signal)
        reply.ending = Result(state, code, job.id, outcome.exit_code, outcome.signal, message=message)
        if reply.out is None:
            self._finish(reply)
        else:
            self._relay_round(budget=RELAY_ROUND)

    def tick(self, now: float) -> None:
        if self._folder is None:
            self._open_folders()
            if self._folder is None:
                return
        self._check_replies_folder()
        if self.client is not None:
            self.client.check()
        if self._live:
            self._beat += 1
            self._write_top(ALIVE, f"{self._beat}\n".encode())
        self._settle_orphans()
        self.expire(now)
        if now >= self._next_sweep:
            self.sweep(now)

    # -- retention ------------------------------------------------------------------------------------------

    def expire(self, now: float, budget: int = SWEEP_BUDGET) -> int:
        """Remove the replies whose time is up: `retention` after their job ended. Returns how many."""
        removed = 0
        while self._due and self._due[0][0] <= now and removed < budget:
            at, nonce = heapq.heappop(self._due)
            reply = self._by_nonce.get(nonce)
            if reply is None or reply.remove_at != at:
                continue
            self._forget(reply, remove=True)
            removed += 1
        if removed:
            log.info("replies_removed", count=removed, why="retention")
        return removed

    def sweep(self, now: float, budget: int = SWEEP_BUDGET) -> None:
        """Walk a bounded part of `replies/` for entries the daemon does not serve: a previous daemon's replies
        (kept until their retention ends, with their result written if it was missing) and anything else,
        which is removed."""
        if self._replies is None:
            return
        if self._sweep is None:
            self._sweep = iter(os.scandir(self._replies))
        for _ in range(budget):
            entry = next(self._sweep, None)
            if entry is None:
                self._sweep = None
                self._next_sweep = now + SWEEP_EVERY
                return
            self._swept(entry.name, now)

    def _swept(self, name: str, now: float) -> None:
        if name == ALIVE or name in self._by_nonce:
            return
        record = None
        if is_nonce(name):
            try:
                record = self._lookup(name)
            except RepliesUnavailable:
                return
        if record is None:
            # Nothing the daemon made, or a reply whose job the records no longer hold.
            self._remove_top(name)
            return
        if not record.state.terminal:
            # A live job's reply this daemon did not take over at start: settled once its record ends.
            reply = Reply(name, record.token_hash, job_id=record.id)
            if self._adopt(reply):
                self._keep(reply)
                self._orphans.add(name)
            return
        retention = self._retention()
        ended = record.ended_at or record.submitted_at
        if retention and ended + retention <= now:
            self._remove_top(name)
            return
        reply = Reply(name, record.token_hash, job_id=record.id, live=False)
        if not self._adopt(reply):
            return
        self._keep(reply)
        if not self._has(reply, RESULT_FILE):
            self._write_ended(reply, record)
        self._remove_at(reply, ended + retention if retention else None)

    # -- replies ------------------------------------------------------------------------------------------

    def _keep(self, reply: Reply) -> None:
        self._by_nonce[reply.nonce] = reply
        if reply.job_id is not None:
            self._by_job[reply.job_id] = reply
        if reply.live:
            self._live.add(reply.nonce)

    def _remove_at(self, reply: Reply, at: float | None) -> None:
        reply.remove_at = at
        if at is not None:
            heapq.heappush(self._due, (at, reply.nonce))

    def _make(self, nonce: str) -> Identity:
        assert self._replies is not None
        fd, ident = podfolder.open_subfolder(self._replies, nonce, mode=REPLY_MODE, shown=f"{REPLIES_DIR}/{nonce}")
        os.close(fd)
        return ident

    def _adopt(self, reply: Reply) -> bool:
        """Take the reply folder under the reply's nonce as it is (made by an earlier daemon), or make one."""
        try:
            reply.ident = self._make(reply.nonce)
        except (OSError, Unsafe) as error:
            log.warning("reply_unusable", job=reply.job_id, error=str(error))
            reply.broken = True
            return False
        return True

    def _open(self, reply: Reply) -> int | None:
        """The reply's folder, when its name still leads to the folder the daemon made."""
        if reply.broken or self._replies is None:
            return None
        try:
            fd, ident = podfolder.open_subfolder(self._replies, reply.nonce)
        except (OSError, Unsafe) as error:
            self._broken(reply, str(error))
            return None
        if ident != reply.ident:
            os.close(fd)
            self._broken(reply, "its folder was replaced")
            return None
        return fd

    def _broken(self, reply: Reply, why: str) -> None:
        log.warning("reply_abandoned", job=reply.job_id, error=why)
        reply.broken = True
        self._close_out(reply)
        self._relaying.discard(reply.nonce)

    def _write(self, reply: Reply, name: str, data: bytes) -> bool:
        fd = self._open(reply)
        if fd is None:
            return False
        try:
            podfolder.write_whole(fd, name, data, FILE_MODE)
        except OSError as error:
            self._broken(reply, f"cannot write {name}: {error.strerror or error}")
            return False
        finally:
            os.close(fd)
        return True

    def _has(self, reply: Reply, name: str) -> bool:
        fd = self._open(reply)
        if fd is None:
            return True
        try:
            os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            return False
        finally:
            os.close(fd)
        return True

    def _start_out(self, reply: Reply) -> None:
        """Create `out` (removing whatever had its name) and relay the job's log into it from the start."""
        fd = self._open(reply)
        if fd is None:
            return
        try:
            for _ in range(3):
                try:
                    reply.out = podfolder.create_file(fd, OUT_FILE, FILE_MODE)
                    break
                except FileExistsError:
                    podfolder.remove(fd, OUT_FILE)
            else:
                self._broken(reply, "out keeps being put back by someone else")
                return
        except OSError as error:
            self._broken(reply, f"cannot create out: {error.strerror or error}")
            return
        finally:
            os.close(fd)
        reply.offset = 0
        self._relaying.add(reply.nonce)
        self._schedule_relay()

    def _close_out(self, reply: Reply) -> None:
        if reply.out is not None:
            with contextlib.suppress(OSError):
                os.close(reply.out)
            reply.out = None

    def _schedule_relay(self) -> None:
        if self._relay_timer is None and self._relaying:
            loop = asyncio.get_running_loop()
            self._relay_timer = loop.call_later(RELAY_PERIOD, self._relay_tick)

    def _relay_tick(self) -> None:
        self._relay_timer = None
        self._relay_round(budget=RELAY_ROUND)
        self._schedule_relay()

    def _relay_round(self, budget: int | None) -> None:
        left = budget
        for nonce in list(self._relaying):
            reply = self._by_nonce.get(nonce)
            if reply is None or reply.out is None:
                self._relaying.discard(nonce)
                continue
            copied, caught_up = self._relay(reply, None if left is None else min(RELAY_CHUNK, left))
            if left is not None:
                left -= copied
            if caught_up and reply.ending is not None:
                self._relaying.discard(nonce)
                self._close_out(reply)
                self._finish(reply)
            if left is not None and left <= 0:
                break

    def _relay(self, reply: Reply, limit: int | None) -> tuple[int, bool]:
        """Copy what the job's log holds past the reply's offset (at most `limit`); (bytes, caught up)."""
        assert reply.out is not None
        if reply.log_path is None:
            return 0, True
        try:
            source = os.open(reply.log_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return 0, True
        except OSError as error:
            self._broken(reply, f"cannot read the job's log: {error.strerror or error}")
            return 0, True
        copied = 0
        try:
            size = os.fstat(source).st_size
            while reply.offset < size and (limit is None or copied < limit):
                want = min(size - reply.offset, RELAY_CHUNK if limit is None else limit - copied)
                data = os.pread(source, want, reply.offset)
                if not data:
                    break
                podfolder.write_all(reply.out, data)
                reply.offset += len(data)
                copied += len(data)
        except OSError as error:
            self._broken(reply, f"cannot relay the output: {error.strerror or error}")
            return copied, True
        finally:
            os.close(source)
        return copied, reply.offset >= size

    def _finish(self, reply: Reply) -> None:
        """Write the result (its output is all in `out`); the reply is kept until read, or for `retention`."""
        assert reply.ending is not None
        self._write(reply, RESULT_FILE, result_text(reply.ending))
        reply.live = False
        self._live.discard(reply.nonce)
        retention = self._retention()
        self._remove_at(reply, self._clock() + retention if retention else None)

    def _write_ended(self, reply: Reply, record: JobRecord) -> None:
        """The whole reply of a job that has ended: its log copied into `out`, then its result."""
        fd = self._open(reply)
        if fd is None:
            return
        temp = podfolder.temp_name()
        try:
            out = podfolder.create_file(fd, temp, FILE_MODE)
            try:
                if record.log:
                    with contextlib.suppress(FileNotFoundError), open(record.log, "rb") as source:
                        while chunk := source.read(1 << 20):
                            podfolder.write_all(out, chunk)
            finally:
                os.close(out)
            podfolder.place(fd, temp, OUT_FILE)
        except OSError as error:
            self._broken(reply, f"cannot write out: {error.strerror or error}")
            return
        finally:
            os.close(fd)
        reply.ending = _result_of(record)
        self._finish(reply)

    def _attach_record(self, record: JobRecord) -> None:
        """Serve the reply of a job this daemon does not hold in memory (its reply was read or removed)."""
        if record.reply_nonce is None:
            return
        reply = Reply(record.reply_nonce, record.token_hash, job_id=record.id)
        if not self._adopt(reply):
            return
        self._keep(reply)
        live = self._executor.find(record.id) if self._executor is not None else None
        if live is None:
            if record.state.terminal:
                self._write_ended(reply, record)
            else:
                self._orphans.add(reply.nonce)
            return
        self._serve_live(reply, live)

    def _serve_live(self, reply: Reply, job: Job) -> None:
        state = "running" if job.state is JobState.RUNNING else "queued"
        self._write(reply, JOB_FILE, f"job={job.id}\nstate={state}\n".encode())
        if job.state is JobState.RUNNING:
            reply.log_path = job.log_path
            self._start_out(reply)

    def _repair(self, reply: Reply) -> None:
        """An attach to a reply the daemon serves: make its folder again when someone removed or replaced it."""
        if self._replies is None or reply.job_id is None:
            return
        if reply.ident is not None and podfolder.still(self._replies, reply.nonce, reply.ident):
            return
        try:
            record = self._lookup(reply.nonce)
        except RepliesUnavailable:
            return
        self._forget(reply, remove=False)
        if record is not None:
            self._attach_record(record)

    def _stray(self, key: ReplyKey) -> None:
        """An attach with a key no job has: say so in a reply of its own, kept for a minute."""
        if key.nonce in self._by_nonce:
            return
        try:
            ident = self._make(key.nonce)
        except (OSError, Unsafe):
            return
        reply = Reply(key.nonce, key.digest, ident=ident, stray=True)
        self._keep(reply)
        message = "no job was submitted with this reply key, or its record is gone (past retention)"
        reply.ending = Result("lost", int(Exit.LOST), None, message=message)
        self._finish(reply)
        self._remove_at(reply, self._clock() + STRAY_KEEP)

    def _settle_orphans(self) -> None:
        """Replies of jobs a previous daemon left live and this one did not run: write their end once the
        records say how it ended (interrupted, expired, refused at restart)."""
        if not self._orphans:
            return
        for nonce in list(self._orphans):
            reply = self._by_nonce.get(nonce)
            if reply is None or reply.job_id is None or reply.broken:
                self._orphans.discard(nonce)
                continue
            if self._executor is not None and self._executor.find(reply.job_id) is not None:
                continue
            try:
                record = self._lookup(nonce)
            except RepliesUnavailable:
                return
            if record is not None and record.state.terminal:
                self._orphans.discard(nonce)
                self._write_ended(reply, record)

    def _forget(self, reply: Reply, *, remove: bool) -> None:
        self._close_out(reply)
        self._relaying.discard(reply.nonce)
        self._orphans.discard(reply.nonce)
        self._live.discard(reply.nonce)
        self._by_nonce.pop(reply.nonce, None)
        if reply.job_id is not None and self._by_job.get(reply.job_id) is reply:
            del self._by_job[reply.job_id]
        if (
            remove
            and not reply.broken
            and self._replies is not None
            and reply.ident is not None
            and podfolder.still(self._replies, reply.nonce, reply.ident)
        ):
            self._remove_top(reply.nonce)

    # -- the replies folder ---------------------------------------------------------------------------------

    def _check_replies_folder(self) -> None:
        """`replies/` removed or replaced under the daemon: make it again (replies in the old one are lost)."""
        if self._folder is None or self._replies is None or self._replies_id is None:
            return
        if podfolder.still(self._folder, REPLIES_DIR, self._replies_id):
            return
        log.warning("replies_folder_replaced", note="replies in the old folder are no longer served")
        with contextlib.suppress(OSError):
            os.close(self._replies)
        self._replies = None
        self._sweep = None
        for reply in list(self._by_nonce.values()):
            self._broken(reply, "replies/ was replaced")
            self._forget(reply, remove=False)
        try:
            self._replies, self._replies_id = podfolder.replace_with_folder(self._folder, REPLIES_DIR, REPLIES_MODE)
            os.fchmod(self._replies, REPLIES_MODE)
        except (OSError, Unsafe) as error:
            self._unavailable(str(error))

    def _write_top(self, name: str, data: bytes) -> None:
        if self._replies is None:
            return
        try:
            podfolder.write_whole(self._replies, name, data, FILE_MODE)
        except OSError as error:
            log.warning("reply_write_failed", name=name, error=str(error))

    def _remove_top(self, name: str) -> None:
        if self._replies is None:
            return
        try:
            podfolder.remove(self._replies, name)
        except OSError as error:
            if error.errno != errno.ENOENT:
                log.warning("reply_not_removed", name=name, error=str(error))

    # -- the records ----------------------------------------------------------------------------------------

    def _lookup(self, nonce: str) -> JobRecord | None:
        """The job a nonce was first submitted with, from the records (read-only, by the nonce's index)."""
        if self._state_dir is None:
            return None
        try:
            if self._reader is None:
                self._reader = Reader(self._state_dir)
            return self._reader.by_reply(nonce)
        except (sqlite3.Error, StoreError) as error:
            if self._reader is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._reader.close()
            self._reader = None
            raise RepliesUnavailable(str(error)) from error


def _same(digest: str | None, expected: str | None) -> bool:
    return digest is not None and expected is not None and hmac.compare_digest(digest, expected)


def _result_of(record: JobRecord) -> Result:
    state = str(record.state)
    code = job_exit_code(state, record.exit_code, record.signal) if record.state.terminal else int(Exit.LOST)
    message = result_message(state, record.id, record.rule, record.argument, record.reason)
    return Result(state, code, record.id, record.exit_code, record.signal, record.rule, message)
