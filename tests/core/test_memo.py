"""The memo of refusals: a flood of one refused line is decided once per policy, and only what needs no host."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from hostpipe.core.evaluate import Memo, evaluate
from hostpipe.core.grammar import Expansions
from hostpipe.core.policy import LoadedPolicy, Refused, builtin_policy

HOME = "/home/hp"
EXPANSIONS = Expansions(home=HOME, user="hp")


@dataclass
class CountingHost:
    home: str = HOME
    asked: list[str] = field(default_factory=list)

    def realpath(self, path: str) -> str:
        self.asked.append(path)
        return os.path.realpath(os.path.join(self.home, path))


def loaded() -> LoadedPolicy:
    policy = builtin_policy()
    return LoadedPolicy(policy, {name: f"/usr/bin/{name}" for name in policy.runtimes}, "(test)", {})


def test_a_repeated_refused_line_is_decided_once_with_the_same_decision() -> None:
    """The second of two equal refused lines is a hit, and its evaluation equals a fresh one."""
    memo, policy, host = Memo(), loaded(), CountingHost()
    line = b"docker run --privileged alpine\n"
    first = memo.evaluate(line, EXPANSIONS, policy, host, {})
    second = memo.evaluate(line, EXPANSIONS, policy, host, {})
    assert isinstance(first.decision, Refused)
    assert second == first == evaluate(line, EXPANSIONS, policy, host, {})
    assert memo.hits == 1


def test_a_new_policy_decides_again() -> None:
    """A reload (a new policy object) empties the memo: the line is decided under the policy now in force."""
    memo, host = Memo(), CountingHost()
    line = b"ls -l\n"
    memo.evaluate(line, EXPANSIONS, loaded(), host, {})
    memo.evaluate(line, EXPANSIONS, loaded(), host, {})
    assert memo.hits == 0


def test_a_refusal_that_asked_the_host_is_not_kept() -> None:
    """A decision that resolved a path may change with the disk, so the same line is decided again each time."""
    memo, policy, host = Memo(), loaded(), CountingHost()
    line = b"docker run -v /etc:/x alpine\n"
    first = memo.evaluate(line, EXPANSIONS, policy, host, {})
    memo.evaluate(line, EXPANSIONS, policy, host, {})
    assert isinstance(first.decision, Refused)
    assert host.asked and memo.hits == 0


def test_allowed_lines_are_not_kept() -> None:
    """Only refusals are kept: an allowed line is decided every time it comes."""
    memo, policy, host = Memo(), loaded(), CountingHost()
    memo.evaluate(b"docker run alpine\n", EXPANSIONS, policy, host, {})
    memo.evaluate(b"docker run alpine\n", EXPANSIONS, policy, host, {})
    assert memo.hits == 0
