"""Bounded timeouts, strict policy types, values read as every program reads them and resource claims,
under the built-in policy and each policy in examples/, through `hostpipe check`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli.test_check import EXAMPLES, decisions, env_for, run_check

POLICIES: dict[str, tuple[str | None, str, float]] = {
    # name: (example file, a line it allows, the longest timeout a line gets under it)
    "built-in": (None, "docker run ubuntu", 7 * 86400),
    "docker-host": ("docker-host.toml", "docker run ubuntu", 72 * 3600),
    "apptainer-host": ("apptainer-host.toml", "apptainer run docker://ubuntu", 7 * 86400),
    "shifter-host": ("shifter-host.toml", "shifter --image=ubuntu --entrypoint", 7 * 86400),
    "bench-policy": ("bench-policy.toml", "docker run bench/sleep:1", 7 * 86400),
    "podman-host": ("podman-host.toml", "podman run ubuntu", 72 * 3600),
}


@pytest.fixture
def env(daemon_root: Path) -> dict[str, str]:
    home = daemon_root / "home"
    home.mkdir()
    return env_for(home)


def policy_args(name: str) -> list[str]:
    file = POLICIES[name][0]
    return [] if file is None else ["--policy", str(EXAMPLES / file)]


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_no_policy_lets_a_line_ask_for_a_timeout_no_timer_can_keep(env, name):
    """HOSTPIPE_TIMEOUT=1e308, 400d or a JSON 1e308 is refused everywhere; 30 days is capped to the policy's
    max_timeout, a week where the policy sets none."""
    _, line, longest = POLICIES[name]
    lines = [
        f"HOSTPIPE_TIMEOUT=1e308 {line}",
        f"HOSTPIPE_TIMEOUT=400d {line}",
        json.dumps({"argv": line.split(), "timeout": 1e308}),
        f"HOSTPIPE_TIMEOUT=30d {line}",
        line,
    ]
    huge, long, as_json, capped, untimed = decisions(run_check(env, "--json", *policy_args(name), *lines))
    for entry in (huge, long, as_json):
        assert (entry["allowed"], entry["rule"]) == (False, "bad-timeout")
        assert "366 days" in entry["reason"]
    assert capped["allowed"] and capped["timeout"] == longest
    assert untimed["allowed"]


_BOOLEAN = re.compile(r"^(\w+) = (true|false)$", re.MULTILINE)
_INTEGER = re.compile(r"^(max_concurrent|max_queued) = (\d+)$", re.MULTILINE)


@pytest.mark.parametrize("name", sorted(n for n in POLICIES if POLICIES[n][0]))
def test_every_example_is_read_with_toml_types_only(env, daemon_root, name):
    """Each example loads; written with "yes" for a boolean or "64" for a count, it is refused naming the key."""
    text = (EXAMPLES / str(POLICIES[name][0])).read_text()
    assert run_check(env, "--json", *policy_args(name), POLICIES[name][1]).returncode == 0
    changes = [(m.group(0), f'{m.group(1)} = "yes"', m.group(1)) for m in _BOOLEAN.finditer(text)]
    changes += [(m.group(0), f'{m.group(1)} = "{m.group(2)}"', m.group(1)) for m in _INTEGER.finditer(text)]
    assert changes, "every example sets a count or a boolean"
    for written, rewritten, key in changes:
        variant = daemon_root / f"{name}-{key}.toml"
        variant.write_text(text.replace(written, rewritten))
        result = run_check(env, "--policy", str(variant), POLICIES[name][1])
        assert result.returncode == 3, result.stdout
        (message,) = result.stderr.splitlines()
        assert re.search(rf"(runtimes\.\w+\.)?{key}: expected a TOML (boolean|integer)", message), message


READ_TWO_WAYS = [
    # --env-file: one path for apptainer before 1.4, a CSV list from 1.4.
    ("apptainer exec --env-file a.env,b.env lolcow_latest.sif env", "--env-file a.env,b.env"),
    # SingularityCE unquotes a CSV -B, apptainer does not: `singularity` may be either.
    ("singularity run -B '\"/etc:/mnt\"' docker://ubuntu", "-B '\"/etc:/mnt\"'"),
]


@pytest.mark.parametrize(("line", "argument"), READ_TWO_WAYS)
@pytest.mark.parametrize("name", ["built-in", "apptainer-host"])
def test_a_value_read_two_ways_is_refused_whatever_the_roots(env, name, line, argument):
    """A value two programs (or two releases) would read differently is refused before any root is asked."""
    if name == "apptainer-host" and line.startswith("singularity"):
        # apptainer-host names apptainer only, which reads the quote as part of a path: not a plain bind.
        line = line.replace("singularity", "apptainer", 1)
        expected = ("bad-bind", argument)
    else:
        expected = ("ambiguous-value", argument)
    (entry,) = decisions(run_check(env, "--json", *policy_args(name), line))
    assert (entry["rule"], entry["argument"]) == expected


@pytest.mark.parametrize("name", ["built-in", "apptainer-host"])
@pytest.mark.parametrize("option", ["--cpu-shares=262144", "--blkio-weight=1000", "--memory-reservation=64G"])
def test_apptainer_claims_on_the_hosts_resources_are_refused(env, name, option):
    """cgroup weights and memory reservations are refused under the built-in policy and the example."""
    (entry,) = decisions(run_check(env, "--json", *policy_args(name), f"apptainer run {option} docker://ubuntu"))
    assert (entry["rule"], entry["argument"]) == (option.split("=")[0][2:], option)
