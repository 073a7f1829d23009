"""The policy model and its decisions: strict TOML types, bounded durations, the home bind, withheld
runtimes, and the words hostpipe adds to an apptainer line."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from hostpipe.core.evaluate import evaluate
from hostpipe.core.grammar import Expansions
from hostpipe.core.policy import (
    DEFAULT_MAX_TIMEOUT,
    Allowed,
    LoadedPolicy,
    Policy,
    Refused,
    RuntimePolicy,
    builtin_policy,
    decide,
)
from hostpipe.core.request import Submit

HOME = "/home/hp"


@dataclass(frozen=True)
class Host:
    home: str = HOME

    def realpath(self, path: str) -> str:
        return os.path.realpath(path)


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each error in `data`, as the policy file's reader reports them."""
    with pytest.raises(ValidationError) as caught:
        Policy.model_validate(data)
    return [
        (".".join(str(p) for p in e["loc"]), str(e["msg"]).removeprefix("Value error, ")) for e in caught.value.errors()
    ]


BOOLEAN_FIELDS = sorted(name for name, f in RuntimePolicy.model_fields.items() if f.annotation is bool)


@pytest.mark.parametrize("field", BOOLEAN_FIELDS)
@pytest.mark.parametrize("value", ["yes", "on", "true", "1", 1, 0, 1.0, "false"])
def test_boolean_keys_take_only_a_toml_boolean(field: str, value: object) -> None:
    """`allow_host_network = "yes"`, `"on"` or `1` is an error naming the field and the TOML to write."""
    ((where, message),) = problems({"runtimes": {"docker": {field: value}}})
    assert where == f"runtimes.docker.{field}"
    assert "TOML boolean" in message and f"{field} = " in message and ": true" not in message
    Policy.model_validate({"runtimes": {"docker": {field: True}}})


def test_boolean_keys_include_every_relaxation() -> None:
    """The strictness covers every boolean relaxation, the ones ArgumentRules adds later included."""
    assert {"allow_host_network", "allow_ports", "allow_devices", "allow_host_namespaces"} <= set(BOOLEAN_FIELDS)


@pytest.mark.parametrize(("value", "write"), [("4", "max_concurrent = 4"), (4.0, "max_concurrent = 4"), (True, "")])
def test_counts_take_only_a_toml_integer(value: object, write: str) -> None:
    """`max_concurrent = "4"` or `4.0` is an error that says to write the number without quotes."""
    ((where, message),) = problems({"max_concurrent": value})
    assert where == "max_concurrent" and "TOML integer" in message and write in message
    ((where, _),) = problems({"max_queued": "10"})
    assert where == "max_queued"
    assert Policy.model_validate({"max_concurrent": 4, "max_queued": 0}).max_concurrent == 4


@pytest.mark.parametrize("field", ["timeout", "max_timeout", "kill_grace"])
def test_durations_take_a_toml_number_or_a_duration_string(field: str) -> None:
    """A duration is a number of seconds or a string like "15m"; a boolean, a list or a table is an error."""
    assert getattr(Policy.model_validate({field: 90}), field) == 90.0
    assert getattr(Policy.model_validate({field: 1.5}), field) == 1.5
    assert getattr(Policy.model_validate({field: "15m"}), field) == 900.0
    for bad in (True, [90], {"s": 90}):
        ((where, message),) = problems({field: bad})
        assert where == field and f'{field} = "15m"' in message


@pytest.mark.parametrize("value", [1e308, "1e308", "400d", float("inf"), "inf", float("nan")])
def test_durations_are_finite_and_at_most_366_days(value: object) -> None:
    """A timeout a timer could never keep is an error, not a silent "forever"."""
    ((where, _),) = problems({"timeout": value})
    assert where == "timeout"


def test_kill_grace_is_at_most_an_hour() -> None:
    """A grace past an hour is an error: the waits that use it would overflow long before 1e308."""
    assert Policy.model_validate({"kill_grace": "1h"}).kill_grace == 3600.0
    ((where, message),) = problems({"kill_grace": "61m"})
    assert where == "kill_grace" and 'kill_grace = "1h"' in message


def test_max_timeout_defaults_to_a_week_or_the_default_timeout() -> None:
    """Without max_timeout a line may ask for a week at most, or for the policy's own timeout if longer."""
    assert builtin_policy().max_timeout == DEFAULT_MAX_TIMEOUT == 7 * 86400
    assert Policy.model_validate({}).max_timeout == DEFAULT_MAX_TIMEOUT
    assert Policy.model_validate({"timeout": "30d"}).max_timeout == 30 * 86400
    assert Policy.model_validate({"max_timeout": 0}).max_timeout == 0.0
    assert Policy.model_validate({"max_timeout": "2h"}).max_timeout == 7200.0
    assert builtin_policy().timeout == 0.0  # services run as long as they need when a line asks for nothing


@pytest.mark.parametrize("kind", ["apptainer", "singularity"])
@pytest.mark.parametrize("home_bind", ["none", "read-only", "read-write"])
def test_home_bind_is_named_for_apptainer_only(kind: str, home_bind: str) -> None:
    """apptainer and singularity take home_bind; other runtimes mount no home folder hostpipe could govern."""
    assert Policy.model_validate({"runtimes": {kind: {"home_bind": home_bind}}}).runtimes[kind].home_bind == home_bind


@pytest.mark.parametrize(
    ("kind", "words"),
    [("shifter", "udiRoot.conf"), ("docker", "-v under bind_roots"), ("podman", "-v under bind_roots")],
)
def test_home_bind_elsewhere_is_an_error_that_says_why(kind: str, words: str) -> None:
    """home_bind on shifter, docker or podman is refused with what that runtime does with the home folder."""
    ((_, message),) = problems({"runtimes": {kind: {"home_bind": "read-only"}}})
    assert f"runtimes.{kind}.home_bind" in message and words in message
    Policy.model_validate({"runtimes": {kind: {"home_bind": "none"}}})


@pytest.mark.parametrize("value", [True, "yes", "ro", "rw"])
def test_home_bind_takes_one_of_three_words(value: object) -> None:
    """home_bind is "none", "read-only" or "read-write", nothing else."""
    ((where, message),) = problems({"runtimes": {"apptainer": {"home_bind": value}}})
    assert where == "runtimes.apptainer.home_bind" and "'read-only'" in message


# --- decisions ----------------------------------------------------------------------------------------------


def loaded(policy: Policy | None = None, withheld: dict[str, str] | None = None) -> LoadedPolicy:
    policy = policy or builtin_policy()
    executables = {name: f"/usr/bin/{name}" for name in policy.runtimes}
    return LoadedPolicy(policy, executables, "(test)", withheld or {})


def test_withheld_runtime_is_refused_with_its_reason() -> None:
    """A runtime the built-in policy leaves out is refused as runtime-withheld, with the reason given."""
    reason = "shifter jobs can write /home/hp ..."
    decision = decide(Submit(argv=("shifter", "--image=x")), loaded(withheld={"shifter": reason}), Host(), {})
    assert decision == Refused("runtime-withheld", reason, "shifter")
    assert isinstance(decide(Submit(argv=("docker", "run", "x")), loaded(), Host(), {}), Allowed)


@pytest.mark.parametrize(
    ("home_bind", "added"),
    [
        ("none", ("--no-mount=home,cwd",)),
        ("read-only", ("--no-mount=home,cwd", f"--bind={HOME}:{HOME}:ro")),
        ("read-write", ("--no-mount=cwd",)),
    ],
)
@pytest.mark.parametrize("kind", ["apptainer", "singularity"])
def test_apptainer_lines_run_with_the_words_that_keep_home_out(
    kind: str, home_bind: str, added: tuple[str, ...]
) -> None:
    """The argv the executor runs holds hostpipe's words right after the subcommand; the record keeps the line."""
    policy = Policy.model_validate({"runtimes": {kind: {"home_bind": home_bind}}})
    request = Submit(argv=(kind, "--debug", "exec", "-e", "docker://x", "ls"))
    decision = decide(request, loaded(policy), Host(), {})
    assert isinstance(decision, Allowed)
    assert decision.added == added
    assert decision.argv == (f"/usr/bin/{kind}", "--debug", "exec", *added, "-e", "docker://x", "ls")


def test_docker_podman_and_shifter_lines_get_no_added_words() -> None:
    """Only apptainer and singularity lines are changed (docker's --cidfile is the executor's, at start)."""
    for argv in (("docker", "run", "x"), ("podman", "run", "x"), ("shifter", "--image=x")):
        decision = decide(Submit(argv=argv), loaded(), Host(), {})
        assert isinstance(decision, Allowed) and decision.added == () and decision.argv[1:] == argv[1:]


def test_a_home_no_bind_can_name_is_refused_for_a_read_only_home_bind() -> None:
    """With home_bind = "read-only", a HOME holding a comma is refused rather than bound as two paths."""
    policy = Policy.model_validate({"runtimes": {"apptainer": {"home_bind": "read-only"}}})
    decision = decide(Submit(argv=("apptainer", "run", "docker://x")), loaded(policy), Host("/home/a,b"), {})
    assert isinstance(decision, Refused) and decision.rule == "home-bind"


EXPANSIONS = Expansions(home=HOME, user="hp")


@pytest.mark.parametrize(
    "line",
    [
        b"HOSTPIPE_TIMEOUT=1e308 docker run x",
        b"HOSTPIPE_TIMEOUT=400d docker run x",
        b'{"argv": ["docker", "run", "x"], "timeout": 1e308}',
        b'{"argv": ["docker", "run", "x"], "timeout": "9999999999999h"}',
    ],
)
def test_a_line_cannot_ask_for_a_timeout_no_timer_can_keep(line: bytes) -> None:
    """HOSTPIPE_TIMEOUT=1e308 (with or without max_timeout) is refused, naming the longest duration."""
    for policy in (builtin_policy(), Policy.model_validate({"max_timeout": 0, "runtimes": {"docker": {}}})):
        result = evaluate(line, EXPANSIONS, loaded(policy), Host(), {})
        assert isinstance(result.decision, Refused)
        assert result.decision.rule == "bad-timeout" and "366 days" in result.decision.reason


def test_a_long_timeout_is_capped_at_a_week_by_the_builtin_policy() -> None:
    """A line may ask for 30 days; the built-in policy gives it a week and says so in the record."""
    result = evaluate(b"HOSTPIPE_TIMEOUT=30d docker run x", EXPANSIONS, loaded(), Host(), {})
    assert isinstance(result.decision, Allowed)
    assert result.decision.timeout == DEFAULT_MAX_TIMEOUT
    assert result.decision.note == "timeout capped at max_timeout 604800s"
    untimed = evaluate(b"docker run x", EXPANSIONS, loaded(), Host(), {}).decision
    assert isinstance(untimed, Allowed) and untimed.timeout is None
