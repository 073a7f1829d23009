"""Replies to pods: how a job's output and result travel back to the client that submitted it.

The only channel back is the folder the pipe lives in, which is bind-mounted into pods: every pod can write
there, and a pod that is root in its container (or runs as the daemon user) can list and read everything in
it. So what a reply holds, and what its name gives away, is chosen for a reader that sees the whole folder:

- The client makes a **reply key** of 64 hex digits (256 random bits) and sends it with its request. The first
  half is the **nonce**: it names the reply's folder, `replies/NONCE/`. The second half is the **token**: it
  never appears in the shared folder, in any form. The daemon keeps only the token's SHA-256 in the job's
  record, and asks for the token itself before it cancels the job, serves its reply again, or removes it.
  Listing the folder therefore hands over nonces, never tokens: a reader can see replies, not act on jobs.
- `replies/` is searchable but not listable by other users (0711), and a reply's files are readable by name
  only: a pod that runs as another user, and is not root on the host, finds a reply only by its nonce, which
  is 128 random bits. Where pods run as the daemon user or as host root, file modes stop nothing, and every
  pod can read every reply's output and result (not its token): the documentation says so.

A reply's files, each written by the daemon alone:

    job       `job=ID` once the line is recorded and the job queued
    out       the job's output (stdout and stderr as the job wrote them), appended while it runs
    result    written whole (renamed into place) once the job has ended and `out` is complete

and `replies/alive`, rewritten every second while any reply is live, by which a waiting client tells a daemon
that is slow from one that is gone.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

REPLIES_DIR = "replies"
BIN_DIR = "bin"
CLIENT_NAME = "hostpipe-submit"
"""The POSIX-sh client the daemon publishes, as `<pipe folder>/bin/hostpipe-submit`."""
ALIVE = "alive"
JOB_FILE = "job"
OUT_FILE = "out"
RESULT_FILE = "result"
REPLY_FILES = (JOB_FILE, OUT_FILE, RESULT_FILE)

NONCE_HEX = 32
KEY_HEX = 64
_NONCE = re.compile(r"[0-9a-f]{32}")
_KEY = re.compile(r"[0-9a-f]{32}(?:[0-9a-f]{32})?")


@dataclass(frozen=True)
class ReplyKey:
    nonce: str
    token: str | None
    """None for a key given as its nonce alone: a reply that no one can cancel, attach to or remove."""

    @classmethod
    def parse(cls, text: str) -> ReplyKey | None:
        if _KEY.fullmatch(text) is None:
            return None
        return cls(text[:NONCE_HEX], text[NONCE_HEX:] or None)

    @property
    def text(self) -> str:
        return self.nonce + (self.token or "")

    @property
    def digest(self) -> str | None:
        return token_digest(self.token) if self.token is not None else None


def is_nonce(name: str) -> bool:
    return _NONCE.fullmatch(name) is not None


def token_digest(token: str) -> str:
    """What the record keeps of a token: enough to check one, nothing to recover it from."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def redact(line: str, key: str) -> str | None:
    """The line as it is recorded: with the key's token half removed. None when the key is not written in the
    line as it is (quoted in parts, escaped), so that no spelling can carry a token into the records."""
    if key not in line:
        return None
    return line.replace(key, key[:NONCE_HEX])


# -- what the client writes into the pipe ------------------------------------------------------------------


def submit_line(
    argv: Sequence[str], key: str, *, pod: str | None, client_id: str | None, timeout: str | float | None
) -> str:
    """The JSON form of a submit request (the Python client's; the sh client writes the plain form)."""
    request: dict[str, object] = {"argv": list(argv), "reply": key}
    if pod is not None:
        request["pod"] = pod
    if client_id is not None:
        request["id"] = client_id
    if timeout is not None:
        request["timeout"] = timeout
    return json.dumps(request, ensure_ascii=False, separators=(",", ":"))


def control_line(op: str, key: str) -> str:
    """`{"op":"cancel","reply":"KEY"}`: the sh client writes exactly this text."""
    return f'{{"op":"{op}","reply":"{key}"}}'


# -- what the daemon writes into a reply -------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """A job's end as its client sees it. `code` is what the client exits with (hostpipe.core.exitcodes);
    `message` is the one line it prints on stderr, or None when the job's own code speaks for itself."""

    state: str
    code: int
    job: int | None = None
    exit_code: int | None = None
    signal: int | None = None
    rule: str | None = None
    message: str | None = None


def one_line(text: str) -> str:
    """Text safe for a `key=value` line and for a terminal: control characters become spaces."""
    return "".join(" " if ord(char) < 0x20 or ord(char) == 0x7F else char for char in text).strip()


def accepted_text(job_id: int) -> bytes:
    return f"job={job_id}\nstate=queued\n".encode()


def result_text(result: Result) -> bytes:
    fields: list[tuple[str, object]] = [
        ("job", result.job),
        ("state", result.state),
        ("code", result.code),
        ("exit_code", result.exit_code),
        ("signal", result.signal),
        ("rule", result.rule),
        ("message", result.message),
    ]
    lines = [f"{name}={one_line(str(value))}" for name, value in fields if value is not None]
    return ("\n".join(lines) + "\n").encode("utf-8", errors="replace")


def parse_result(text: str) -> Result:
    """Read a `result` file; raises ValueError for one that is not whole or not a result."""
    if not text.endswith("\n"):
        raise ValueError("the result is not complete")
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, equals, value = line.partition("=")
        if equals:
            values[name] = value
    try:
        code = int(values["code"])
        state = values["state"]
    except (KeyError, ValueError):
        raise ValueError("the result has no state or code") from None
    if not 0 <= code <= 255:
        raise ValueError(f"the result's code {code} is not an exit code")
    return Result(
        state=state,
        code=code,
        job=_int(values.get("job")),
        exit_code=_int(values.get("exit_code")),
        signal=_int(values.get("signal")),
        rule=values.get("rule"),
        message=values.get("message"),
    )


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def result_message(
    state: str, job: int | None, rule: str | None, argument: str | None, reason: str | None
) -> str | None:
    """The one line a client prints for hostpipe's own outcomes; none for a job that ended by itself."""
    if state in ("succeeded", "failed"):
        return None
    what = f"job {job}" if job is not None else "the request"
    why = reason or "no reason recorded"
    if state == "refused":
        at = f" at {argument!r}" if argument else ""
        return f"refused ({rule}{at}): {why}" if rule else f"refused: {why}"
    if state == "timed_out":
        return f"{what} timed out: {why}"
    if state == "cancelled":
        return f"{what} cancelled: {why}"
    return f"{what} {state.replace('_', ' ')}: {why}"
