"""From the bytes of one line to a decision: the path every line takes, in the daemon and in `hostpipe check`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hostpipe.core.grammar import Expansions, parse_line
from hostpipe.core.policy import Allowed, Decision, LoadedPolicy, Refused, decide
from hostpipe.core.request import LineRefused, Submit
from hostpipe.core.runtimes.base import Host


@dataclass(frozen=True)
class Evaluation:
    line: str
    """The line as text (invalid UTF-8 shown with backslash escapes), for records and messages."""
    decision: Decision
    submit: Submit | None
    pod: str | None
    client_id: str | None

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
        return Evaluation(
            text, Refused(refused.rule, refused.reason, refused.argument), None, refused.pod, refused.client_id
        )
    return Evaluation(text, decide(submit, loaded, host, environ), submit, submit.pod, submit.id)


def claimed_names(data: bytes, expansions: Expansions) -> tuple[str | None, str | None]:
    """The pod and job names a line claims, read as far as the line can be read; for filing a refusal."""
    try:
        submit = parse_line(data, expansions)
    except LineRefused as refused:
        return refused.pod, refused.client_id
    return submit.pod, submit.id
