"""The closed set of requests hostpipe understands, shared by the daemon and its clients.

A pod sends a `Submit` through the pipe (one line), optionally with a reply key that asks for the job's
output and result back (`hostpipe.core.replies`); the client that holds that key may then send a
`PipeControl` (cancel, attach, done) through the pipe too. An operator sends a `Cancel` through the daemon's
control socket. All are plain frozen values; reading them from bytes is the grammar's job
(`hostpipe.core.grammar`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

POD_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
"""`namespace/name`, each a Kubernetes DNS subdomain name."""
CLIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""A pod's own name for a job: safe as a file name, never `.` or `..`."""

REPLY_PATTERN = r"^[0-9a-f]{32}([0-9a-f]{32})?$"
"""A reply key: a nonce of 32 lowercase hex digits that names the reply, then (usually) a token of 32 more that
lets its holder cancel, attach and remove it. The nonce alone asks for a reply nobody can act on."""

PodName = Annotated[str, StringConstraints(pattern=POD_PATTERN)]
ClientId = Annotated[str, StringConstraints(pattern=CLIENT_ID_PATTERN)]
ReplyKey = Annotated[str, StringConstraints(pattern=REPLY_PATTERN)]

_POD_RE = re.compile(POD_PATTERN)
_CLIENT_ID_RE = re.compile(CLIENT_ID_PATTERN)
_REPLY_RE = re.compile(REPLY_PATTERN)


def is_pod_name(text: str) -> bool:
    return _POD_RE.fullmatch(text) is not None


def is_client_id(text: str) -> bool:
    return _CLIENT_ID_RE.fullmatch(text) is not None


def is_reply_key(text: str) -> bool:
    return _REPLY_RE.fullmatch(text) is not None


class Submit(BaseModel):
    """Run `argv` on the host for `pod`, under the policy in force."""

    # Built on first use, not at import: the daemon is ready sooner and the first line pays a few ms once.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    op: Literal["submit"] = "submit"
    argv: tuple[str, ...] = Field(min_length=1)
    pod: PodName | None = None
    id: ClientId | None = None
    """The pod's own name for this job, so that it can ask for the result later."""
    timeout: float | None = Field(default=None, gt=0)
    """Seconds; capped by the policy's max_timeout."""
    reply: ReplyKey | None = None
    """The submitter's reply key: the daemon writes the job's output and result where its nonce says."""


class Cancel(BaseModel):
    """Stop one job (by hostpipe's id) or every live job of a pod."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    op: Literal["cancel"] = "cancel"
    job: int | None = None
    pod: PodName | None = None


ControlRequest = Annotated[Cancel, Field(discriminator="op")]


class PipeControl(BaseModel):
    """What the holder of a reply key asks through the pipe about the job it submitted with that key.

    `cancel` stops the job, `attach` has its reply written again (a restarted client picks up the output and
    result), `done` says the client has read the reply, which the daemon then removes. A key without its
    token half can do none of these.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    op: Literal["cancel", "attach", "done"]
    reply: ReplyKey


CONTROL_OPS = ("cancel", "attach", "done")


@dataclass(frozen=True)
class LineRefused(Exception):
    """A line that cannot become a request. `rule` names what it broke; `reason` says what to do instead."""

    rule: str
    reason: str
    pod: str | None = None
    """The pod, when the line named one before it broke a rule, so that the refusal is filed under it."""
    client_id: str | None = None
    argument: str | None = None
    """The text in the line that broke the rule (an operator, an expansion), where there is one."""
    reply: str | None = None
    """The reply key, when the line gave one before it broke a rule, so that the refusal reaches its client."""

    def __str__(self) -> str:
        return f"{self.rule}: {self.reason}"
