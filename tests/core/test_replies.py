"""The reply protocol as pure values: keys, what a record keeps of them, result files, the request lines the
clients write and how the grammar reads them back."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hostpipe.core.evaluate import evaluate
from hostpipe.core.grammar import MAX_LINE_BYTES, Expansions, parse_control, parse_line
from hostpipe.core.policy import LoadedPolicy, Policy
from hostpipe.core.replies import (
    ReplyKey,
    Result,
    control_line,
    parse_result,
    redact,
    result_message,
    result_text,
    submit_line,
    token_digest,
)
from hostpipe.core.request import LineRefused, PipeControl

EXPANSIONS = Expansions(home="/home/u", user="u")
KEY = "0123456789abcdef" * 2 + "fedcba9876543210" * 2
NONCE, TOKEN = KEY[:32], KEY[32:]
HEX = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        (KEY, ReplyKey(NONCE, TOKEN)),
        (NONCE, ReplyKey(NONCE, None)),
        (KEY.upper(), None),
        (KEY[:-1], None),
        (KEY + "0", None),
        (NONCE[:-1], None),
        ("", None),
        (KEY[:63] + "g", None),
    ],
)
def test_a_reply_key_is_a_nonce_and_optionally_a_token(text: str, parsed: ReplyKey | None) -> None:
    """64 lowercase hex digits are a nonce and a token; 32 are a nonce alone; nothing else is a key."""
    assert ReplyKey.parse(text) == parsed


@given(HEX)
def test_what_the_record_keeps_of_a_token_never_holds_it(key: str) -> None:
    """The digest is the token's SHA-256: fixed, checkable, and not the token."""
    parsed = ReplyKey.parse(key)
    assert parsed is not None and parsed.token is not None
    assert parsed.digest == token_digest(parsed.token)
    assert parsed.token not in (parsed.digest or "")


def test_redacting_a_line_leaves_the_nonce_and_drops_the_token() -> None:
    """The recorded line keeps the nonce; a key that is not written as it is cannot be redacted (None)."""
    assert redact(f"HOSTPIPE_REPLY={KEY} docker run x", KEY) == f"HOSTPIPE_REPLY={NONCE} docker run x"
    assert redact(f"HOSTPIPE_REPLY='{KEY[:10]}''{KEY[10:]}' docker run x", KEY) is None


@pytest.mark.parametrize(
    "line",
    [
        f"HOSTPIPE_REPLY={KEY} docker run img",
        f"HOSTPIPE_REPLY='{KEY}' HOSTPIPE_POD=ns/p docker run img",
        json.dumps({"argv": ["docker", "run", "img"], "reply": KEY}),
    ],
)
def test_the_grammar_reads_the_reply_key_in_both_forms(line: str) -> None:
    """HOSTPIPE_REPLY= in a plain line and "reply" in a JSON line give the request its key."""
    assert parse_line(line.encode(), EXPANSIONS).reply == KEY


@pytest.mark.parametrize(
    "line",
    [
        "HOSTPIPE_REPLY=xyz docker run img",
        f"HOSTPIPE_REPLY={KEY.upper()} docker run img",
        json.dumps({"argv": ["docker"], "reply": 42}),
        json.dumps({"argv": ["docker"], "reply": KEY + "00"}),
    ],
)
def test_a_malformed_reply_key_is_refused_as_bad_reply(line: str) -> None:
    """A key that is not 32 or 64 lowercase hex digits is refused, saying what a key is."""
    with pytest.raises(LineRefused) as refused:
        parse_line(line.encode(), EXPANSIONS)
    assert refused.value.rule == "bad-reply"
    assert "64 lowercase hex digits" in refused.value.reason


def test_a_refusal_after_the_key_carries_the_key_so_the_client_hears_of_it() -> None:
    """A line refused by the grammar after its key was read still names the key (its client gets the refusal)."""
    with pytest.raises(LineRefused) as refused:
        parse_line(f"HOSTPIPE_REPLY={KEY} docker run x > out".encode(), EXPANSIONS)
    assert (refused.value.rule, refused.value.reply) == ("redirection", KEY)


@pytest.mark.parametrize("op", ["cancel", "attach", "done"])
def test_a_control_line_is_an_op_and_a_key_and_nothing_else(op: str) -> None:
    """The clients' control lines read back as themselves; any other key or a bad key makes them no control."""
    assert parse_control(control_line(op, KEY).encode()) == PipeControl(op=op, reply=KEY)  # type: ignore[arg-type]
    assert parse_control(f'  {{"reply": "{KEY}", "op": "{op}"}}  '.encode()) == PipeControl(op=op, reply=KEY)  # type: ignore[arg-type]
    for other in (
        {"op": op, "reply": KEY, "pod": "ns/p"},
        {"op": op, "reply": "short"},
        {"op": op},
        {"op": op, "reply": KEY, "argv": ["docker"]},
    ):
        assert parse_control(json.dumps(other).encode()) is None
        with pytest.raises(LineRefused) as refused:
            parse_line(json.dumps(other).encode(), EXPANSIONS)
        assert refused.value.rule in ("bad-field", "bad-reply")
    assert parse_control(b'{"op": "cancel", "reply": "' + KEY.encode() + b'", "op": "done"}') is None
    assert parse_control(f"HOSTPIPE_REPLY={KEY} docker run img".encode()) is None


def test_a_valid_control_line_is_never_taken_for_a_command() -> None:
    """parse_line (and so hostpipe check) refuses a control line as pipe-control: it runs no command."""
    with pytest.raises(LineRefused) as refused:
        parse_line(control_line("cancel", KEY).encode(), EXPANSIONS)
    assert refused.value.rule == "pipe-control"


def test_a_pod_cannot_be_named_in_a_control_line() -> None:
    """A pod name (or an id) cannot stand in for the key: such a line is no control, and is refused."""
    with pytest.raises(ValidationError):
        PipeControl.model_validate({"op": "cancel", "pod": "ns/p"})
    assert parse_control(b'{"op": "cancel", "pod": "ns/p"}') is None


ARGV = st.lists(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\0\n\r"), max_size=20), min_size=1, max_size=8
)


@settings(max_examples=200)
@given(ARGV, st.none() | st.sampled_from(["ns/p", "jiriaf/job-1"]), st.none() | st.sampled_from(["run-1", "a.b"]))
def test_the_python_clients_request_reads_back_exactly(argv: list[str], pod: str | None, client_id: str | None) -> None:
    """The JSON request `hostpipe submit` writes gives the daemon the same argv, pod, id and key."""
    line = submit_line(argv, KEY, pod=pod, client_id=client_id, timeout="90s").encode()
    if len(line) >= MAX_LINE_BYTES:
        return
    request = parse_line(line, EXPANSIONS)
    assert (list(request.argv), request.pod, request.id, request.reply, request.timeout) == (
        argv,
        pod,
        client_id,
        KEY,
        90.0,
    )


def test_the_recorded_line_keeps_the_nonce_not_the_token() -> None:
    """evaluate gives the line as recorded: the token half of the key is left out, the decision is unchanged."""
    loaded = LoadedPolicy(policy=Policy(), executables={}, source="test")
    result = evaluate(f"HOSTPIPE_REPLY={KEY} docker run img".encode(), EXPANSIONS, loaded, _NoHost(), {})
    assert result.line == f"HOSTPIPE_REPLY={NONCE} docker run img"
    assert result.reply == KEY

    split = evaluate(
        f"HOSTPIPE_REPLY='{KEY[:20]}''{KEY[20:]}' docker run img".encode(), EXPANSIONS, loaded, _NoHost(), {}
    )
    assert split.reply is None
    assert split.decision.rule == "bad-reply"  # type: ignore[union-attr]


class _NoHost:
    """evaluate needs a Host only for lines the policy reads; these are refused before."""


STATES = st.sampled_from(["succeeded", "failed", "timed_out", "cancelled", "refused", "interrupted", "lost"])


@given(STATES, st.integers(0, 255), st.none() | st.integers(1, 10**9), st.none() | st.text(max_size=200))
def test_a_result_reads_back_as_written_on_one_line_each(
    state: str, code: int, job: int | None, text: str | None
) -> None:
    """Whatever a reason holds (newlines, control characters), the result file keeps one field per line."""
    written = Result(state, code, job, message=text)
    parsed = parse_result(result_text(written).decode())
    assert (parsed.state, parsed.code, parsed.job) == (state, code, job)
    if text is not None and text.strip():
        assert parsed.message is not None and "\n" not in parsed.message


@pytest.mark.parametrize("text", ["state=failed\ncode=1", "state=failed\n", "code=1\n", "state=x\ncode=300\n", ""])
def test_an_incomplete_or_impossible_result_is_not_read(text: str) -> None:
    """A result without its end, its state or a code 0-255 is refused, never taken for an exit code."""
    with pytest.raises(ValueError):
        parse_result(text)


def test_only_hostpipes_own_outcomes_get_a_message() -> None:
    """A job that ended by itself speaks through its code; refusals, timeouts, cancels and losses say why."""
    assert result_message("succeeded", 1, None, None, None) is None
    assert result_message("failed", 1, None, None, "exit code 3") is None
    assert (
        result_message("refused", 2, "privileged", "--privileged", "no") == "refused (privileged at '--privileged'): no"
    )
    assert result_message("timed_out", 3, None, None, "timed out after 1s") == "job 3 timed out: timed out after 1s"
    assert result_message("interrupted", 4, None, None, "daemon died") == "job 4 interrupted: daemon died"


@pytest.mark.parametrize("value", ["yes", True, "1 week", -1])
def test_retention_takes_only_a_duration(value: object) -> None:
    """The policy's retention is a TOML number of seconds or a duration string, nothing else."""
    with pytest.raises(ValidationError, match="retention"):
        Policy.model_validate({"retention": value})
    assert Policy.model_validate({"retention": "1d"}).retention == 86400.0
    assert Policy.model_validate({"retention": 0}).retention == 0.0
