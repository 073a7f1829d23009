"""The client side of replies (`hostpipe submit`): one request into the pipe, then the reply read back.

It does what the published sh client (hostpipe/data/hostpipe-submit.sh) does, option for option, for pods
that have Python: make a reply key, write the request in one write, wait until the daemon has taken it, and
with `wait` print the job's output as it arrives and return the job's exit code. A TERM, INT or HUP sends a
cancel with the key and returns 128+N. Everything it prints on stderr is its own one-line error or the
daemon's one-line reason; `verbose` notes go to stdout, because vk-cmd takes any stderr as a failure.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import BinaryIO

from hostpipe.core.exitcodes import SIGNAL_BASE, Exit
from hostpipe.core.grammar import MAX_LINE_BYTES
from hostpipe.core.replies import (
    ALIVE,
    JOB_FILE,
    KEY_HEX,
    NONCE_HEX,
    OUT_FILE,
    REPLIES_DIR,
    RESULT_FILE,
    ReplyKey,
    Result,
    control_line,
    parse_result,
    submit_line,
)

POLL = 0.2
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
CANCEL_WAIT = 10.0
"""Seconds a terminated client waits for the cancelled job's result, printing its last output."""


class ClientExit(Exception):
    """The client ends with `code`, printing `message` (its own error) on stderr when there is one."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or "")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Request:
    pipe: Path
    argv: tuple[str, ...] = ()
    pod: str | None = None
    client_id: str | None = None
    timeout: str | None = None
    wait: bool = False
    attach: str | None = None
    key_file: Path | None = None
    patience: int = 30
    """Seconds without an answer from a daemon after which the client gives up (Exit.NO_DAEMON)."""
    verbose: bool = False


def pod_from_environment(environ: dict[str, str]) -> str | None:
    """NS/NAME from the Downward-API variables POD_NAMESPACE and POD_NAME, when both are set."""
    namespace, name = environ.get("POD_NAMESPACE"), environ.get("POD_NAME")
    return f"{namespace}/{name}" if namespace and name else None


def _open_nofollow(path: Path) -> int | None:
    """A reply file for reading, never through a symlink (another pod could plant one to make this client
    print a file of its own container)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def _read(path: Path) -> str | None:
    fd = _open_nofollow(path)
    if fd is None:
        return None
    try:
        with os.fdopen(fd, "rb") as source:
            return source.read(1 << 16).decode("utf-8", errors="replace")
    except OSError:
        return None


class Client:
    def __init__(
        self,
        request: Request,
        *,
        out: BinaryIO | None = None,
        note: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.request = request
        self._out = out or sys.stdout.buffer
        self._note = note or (lambda _text: None)
        self._clock = clock
        self._caught: int | None = None
        self._cancelling = False
        self._submitted = False
        self._offset = 0
        folder = request.pipe.parent
        self._replies = folder / REPLIES_DIR
        self.key = ""
        self._dir = self._replies

    # -- the run ----------------------------------------------------------------------------------------------

    def run(self) -> int:
        """Submit (or attach) and return the exit code; raises ClientExit for the client's own outcomes."""
        request = self.request
        if request.attach is not None:
            self.key = request.attach
            line = control_line("attach", self.key)
        else:
            self.key = self._key()
            line = submit_line(
                request.argv, self.key, pod=request.pod, client_id=request.client_id, timeout=request.timeout
            )
        self._dir = self._replies / self.key[:NONCE_HEX]
        data = (line + "\n").encode("utf-8")
        if len(data) > MAX_LINE_BYTES:
            raise ClientExit(
                Exit.CLIENT_ERROR,
                f"the request is {len(data)} bytes with its newline, and a pipe line holds at most {MAX_LINE_BYTES} "
                "so that writers are never interleaved; move long arguments into a file the command reads",
            )
        previous = {sig: signal.signal(sig, self._on_signal) for sig in SIGNALS}
        try:
            return self._run(data)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _run(self, data: bytes) -> int:
        request = self.request
        if not self._send(data, request.patience):
            raise ClientExit(
                Exit.NO_DAEMON,
                f"no daemon is reading {request.pipe} (waited {request.patience}s to write the request)",
            )
        self._submitted = True
        self._check_caught()
        deadline = self._clock() + request.patience
        while not (self._dir / RESULT_FILE).exists() and not (self._dir / JOB_FILE).exists():
            if self._clock() >= deadline:
                if request.attach is None:
                    # A daemon that reads the line later must not run it for a client that has gone.
                    self._send((control_line("cancel", self.key) + "\n").encode(), 2)
                raise ClientExit(
                    Exit.NO_DAEMON,
                    f"no daemon answered within {request.patience}s: is hostpipe serve running for {request.pipe}?",
                )
            self._nap()
        wait = request.wait or request.attach is not None
        if (self._dir / RESULT_FILE).exists():
            if wait:
                return self._finish()
            result = self._result()
            if result.state == "refused":
                raise ClientExit(result.code, result.message)
        job, state = self._job()
        self._note(f"job {job or '?'} {state or 'queued'}")
        if not wait:
            if request.key_file is None:
                self._out.write((self.key + "\n").encode())
                self._out.flush()
            return Exit.OK
        return self._follow(state)

    def _follow(self, state: str | None) -> int:
        beat = _read(self._replies / ALIVE)
        last_change = self._clock()
        while True:
            self._relay()
            if (self._dir / RESULT_FILE).exists():
                return self._finish()
            if self.request.verbose:
                job, now_state = self._job()
                if now_state != state:
                    self._note(f"job {job or '?'} {now_state}")
                    state = now_state
            now = _read(self._replies / ALIVE)
            if now != beat:
                beat, last_change = now, self._clock()
            elif self._clock() - last_change >= self.request.patience:
                job, _ = self._job()
                raise ClientExit(
                    Exit.NO_DAEMON,
                    f"no daemon answered for {self.request.patience}s while job {job or '?'} was live: is "
                    f"hostpipe serve running for {self.request.pipe}?",
                )
            self._nap()

    def _finish(self) -> int:
        self._relay()
        result = self._result()
        if result.message:
            print(f"hostpipe: {result.message}", file=sys.stderr, flush=True)
        self._note(f"job {result.job or '?'} {result.state}, exit code {result.code}")
        # The reply has been read: the daemon may remove it (the record and the log stay on the host).
        self._send((control_line("done", self.key) + "\n").encode(), 2)
        return result.code

    # -- the key ---------------------------------------------------------------------------------------------

    def _key(self) -> str:
        key_file = self.request.key_file
        if key_file is not None and key_file.exists():
            text = key_file.read_text(errors="replace").strip()
            if ReplyKey.parse(text) is None or len(text) != KEY_HEX:
                raise ClientExit(
                    Exit.CLIENT_ERROR, f"{key_file} holds no reply key (64 hex digits); remove it to make a new one"
                )
            return text
        key = secrets.token_hex(KEY_HEX // 2)
        if key_file is not None:
            temp = key_file.with_name(f"{key_file.name}.{os.getpid()}")
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(key + "\n")
                os.replace(temp, key_file)
            except OSError as error:
                raise ClientExit(
                    Exit.CLIENT_ERROR, f"cannot keep the reply key in {key_file}: {error.strerror or error}"
                ) from error
        return key

    # -- the pipe --------------------------------------------------------------------------------------------

    def _send(self, data: bytes, patience: float) -> bool:
        """Write `data` into the pipe in one write, waiting at most `patience` seconds for a reader."""
        deadline = self._clock() + patience
        while True:
            try:
                fd = os.open(self.request.pipe, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                break
            except OSError as error:
                if error.errno not in (errno.ENXIO, errno.ENOENT) or self._clock() >= deadline:
                    return False
            self._nap()
        try:
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                raise ClientExit(Exit.NO_DAEMON, f"{self.request.pipe} is not a pipe: is hostpipe serve running?")
            os.set_blocking(fd, True)
            return os.write(fd, data) == len(data)
        except OSError:
            return False
        finally:
            os.close(fd)

    # -- the reply -------------------------------------------------------------------------------------------

    def _relay(self) -> None:
        fd = _open_nofollow(self._dir / OUT_FILE)
        if fd is None:
            return
        try:
            while chunk := os.pread(fd, 1 << 16, self._offset):
                self._out.write(chunk)
                self._offset += len(chunk)
        except OSError:
            pass
        finally:
            os.close(fd)
        with contextlib.suppress(BrokenPipeError):
            self._out.flush()

    def _result(self) -> Result:
        text = _read(self._dir / RESULT_FILE)
        try:
            if text is None:
                raise ValueError("it cannot be read")
            return parse_result(text)
        except ValueError as error:
            raise ClientExit(
                Exit.CLIENT_ERROR, f"cannot read the reply's result in {self._dir / RESULT_FILE}: {error}"
            ) from None

    def _job(self) -> tuple[str | None, str | None]:
        text = _read(self._dir / JOB_FILE) or ""
        values = dict(line.partition("=")[::2] for line in text.splitlines())
        return values.get("job"), values.get("state")

    # -- signals ---------------------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._caught is not None:
            # A second signal ends the client at once.
            raise ClientExit(SIGNAL_BASE + signum)
        self._caught = signum

    def _nap(self) -> None:
        time.sleep(POLL)
        self._check_caught()

    def _check_caught(self) -> None:
        if self._caught is None or self._cancelling:
            return
        self._cancelling = True
        signum = self._caught
        if self._submitted and not (self._dir / RESULT_FILE).exists():
            self._send((control_line("cancel", self.key) + "\n").encode(), 5)
            if self.request.wait or self.request.attach is not None:
                deadline = self._clock() + CANCEL_WAIT
                while not (self._dir / RESULT_FILE).exists() and self._clock() < deadline:
                    self._relay()
                    time.sleep(POLL)
                self._relay()
                if (self._dir / RESULT_FILE).exists():
                    try:
                        message = self._result().message
                    except ClientExit:
                        message = None
                    else:
                        self._send((control_line("done", self.key) + "\n").encode(), 2)
                    raise ClientExit(SIGNAL_BASE + signum, message)
        raise ClientExit(SIGNAL_BASE + signum)


def submit(request: Request, note: Callable[[str], None] | None = None) -> tuple[int, str | None]:
    """Run the client; (exit code, the one line to print on stderr or None)."""
    try:
        return Client(request, note=note).run(), None
    except ClientExit as ending:
        return ending.code, ending.message
