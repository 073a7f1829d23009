"""From the bytes of one line to a decision: the path every line takes, in the daemon and in `hostpipe check`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hostpipe.core.grammar import Expansions, parse_line
from hostpipe.core.policy import Allowed, Decision, LoadedPolicy, Refused, decide
from hostpipe.core.replies import redact
from hostpipe.core.request import LineRefused, Submit
from hostpipe.core.runtimes.base import Host


@dataclass(frozen=True)
class Evaluation:
    line: str
    """The line as text (invalid UTF-8 shown with backslash escapes), for records and messages; a reply key's
    token half is left out of it."""
    decision: Decision
    submit: Submit | None
    pod: str | None
    client_id: str | None
    reply: str | None = None
    """The submitter's reply key, whether the line was allowed or refused."""

    @property
    def allowed(self) -> Allowed | None:
        return self.decision if isinstance(self.decision, Allowed) else None


def line_text(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


def evaluate(
    data: bytes, expansions: Expansions, loaded: LoadedPolicy, host: Host, environ: Mapping[str, str]
) -> Evaluation:
    text = line_text(data)
    try:
        submit = parse_line(data, expansions)
    except LineRefused as refused:
        decision = Refused(refused.rule, refused.reason, refused.argument)
        reply = refused.reply
        shown = redact(text, reply) if reply is not None else text
        if shown is None:
            return Evaluation(text, decision, None, refused.pod, refused.client_id)
        return Evaluation(shown, decision, None, refused.pod, refused.client_id, reply)
    if submit.reply is not None:
        shown = redact(text, submit.reply)
        if shown is None:
            # The key was quoted or escaped: no record could leave its token out, so the line is not taken.
            reason = (
                "The reply key is not written as it is (quoted in parts or escaped), so its token could not be "
                "left out of the record; write the 64 hex digits as they are, as the clients do."
            )
            return Evaluation(text, Refused("bad-reply", reason), submit, submit.pod, submit.id)
        return Evaluation(shown, decide(submit, loaded, host, environ), submit, submit.pod, submit.id, submit.reply)
    return Evaluation(text, decide(submit, loaded, host, environ), submit, submit.pod, submit.id)


class _Probe:
    """The host, noting whether a rule asked it anything (a decision that did may change with the disk)."""

    def __init__(self, host: Host) -> None:
        self._host = host
        self.home = host.home
        self.touched = False

    def realpath(self, path: str) -> str:
        self.touched = True
        return self._host.realpath(path)


class Memo:
    """Refusals of lines that asked the host nothing, kept per policy: a flood of one line is decided once.

    Such a decision depends only on the line's bytes and the policy in force (the expansions and the
    environment are the daemon's, fixed for its life), so it is kept until the policy object changes. Lines
    with a reply key are never kept (the key's token stays out of memory), nor are allowed lines. A hit is the
    same decision as before; the caller still records it and counts it against the rate limit.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._loaded: LoadedPolicy | None = None
        self._kept: dict[bytes, Evaluation] = {}
        self.hits = 0

    def evaluate(
        self, data: bytes, expansions: Expansions, loaded: LoadedPolicy, host: Host, environ: Mapping[str, str]
    ) -> Evaluation:
        if loaded is not self._loaded:
            self._kept.clear()
            self._loaded = loaded
        kept = self._kept.get(data)
        if kept is not None:
            self.hits += 1
            return kept
        probe = _Probe(host)
        result = evaluate(data, expansions, loaded, probe, environ)
        if not probe.touched and result.reply is None and isinstance(result.decision, Refused):
            if len(self._kept) >= self._size:
                self._kept.clear()
            self._kept[data] = result
        return result


def claimed_names(data: bytes, expansions: Expansions) -> tuple[str | None, str | None]:
    """The pod and job names a line claims, read as far as the line can be read; for filing a refusal."""
    try:
        submit = parse_line(data, expansions)
    except LineRefused as refused:
        return refused.pod, refused.client_id
    return submit.pod, submit.id
