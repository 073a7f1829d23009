"""docker and podman lines that would give a pod more than an allowed container, under every policy we ship.

Each case is a line an attacker could write to reach the host through the engine: a list option whose later
elements escape what the first satisfies, a value the CLI or engine normalises into something else, an option
that has the engine act on the host, a resource the host cannot take back, or a container that outlives its
job. Every case is judged under the built-in policy and under the argument settings of every runtime table in
examples/ applied to docker and podman (the way README.md judges the podman line under a podman site's
policy), because a site's relaxations must never open what the case closes.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from host_tmp import TmpHost, build_host
from oci_spelling import HOME, words_of

from hostpipe.core.policy import Policy, builtin_policy
from hostpipe.core.runtimes import docker, podman
from hostpipe.core.runtimes.base import ArgumentRules, ArgvRefused, Grammar

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
GRAMMARS = {"docker": docker.GRAMMAR, "podman": podman.GRAMMAR}


def _policies() -> list[tuple[str, ArgumentRules]]:
    """(name, rules): the built-in docker table, then every runtime table of every example policy."""
    found: list[tuple[str, ArgumentRules]] = [("built-in", builtin_policy().runtimes["docker"])]
    for path in sorted(EXAMPLES.glob("*.toml")):
        policy = Policy.model_validate(tomllib.loads(path.read_text()))
        found += [(f"{path.name}[{name}]", table) for name, table in policy.runtimes.items()]
    return found


POLICIES = _policies()


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> TmpHost:
    built = build_host(tmp_path_factory.mktemp("escapes"))
    (Path(built.home) / "data" / "x.env").write_text("A=b\n")
    (Path(built.home) / "x.env").write_text("A=b\n")
    return built


def refusal(grammar: Grammar, line: str, host: TmpHost, rules: ArgumentRules) -> ArgvRefused | None:
    try:
        grammar.check(grammar.parse(words_of(line, host)), rules, host)
    except ArgvRefused as refused:
        return refused
    return None


@dataclass(frozen=True)
class Case:
    line: str
    rule: str
    relaxed_by: str = ""
    """A policy key that, where a policy sets it true, allows the line (the site chose to open it)."""

    def expected(self, rules: ArgumentRules) -> str | None:
        return None if self.relaxed_by and getattr(rules, self.relaxed_by) else self.rule


CASES: list[Case] = [
    # 1. List options: podman's StringSlice options are CSV, every element is what podman acts on.
    Case("podman run --log-opt max-size=10mb,path=/etc/cron.d/x busybox", "host-file"),
    Case("podman run --log-opt tag=a,PATH=/root/.bashrc busybox", "host-file"),
    Case("podman run --log-opt max-size=1m,driver=passthrough busybox", "log-driver"),
    Case("podman run --group-add '\"keep-groups\"' busybox", "ambiguous-value"),
    Case("podman run --group-add 100,keep-groups busybox", "option-refused"),
    Case("podman run --cap-add CHOWN,SYS_ADMIN busybox", "capabilities"),
    Case("podman run --sysctl net.ipv4.tcp_syncookies=1,kernel.core_pattern=x busybox", "sysctl"),
    Case("podman run --ulimit nofile=1024:1024,rtprio=99 busybox", "resource-limit"),
    Case("podman run --annotation '\"run.oci.keep_original_groups=1\"' busybox", "ambiguous-value"),
    Case("podman run --env-file '@HOME/x.env\n/etc/shadow' busybox", "ambiguous-value"),
    Case("podman run --device /dev/null,/dev/kmsg busybox", "devices"),
    Case("podman run --requires a,b busybox", "option-refused"),
    # 2. Values the CLI or the engine normalises: judged as the engine receives them.
    Case("docker run --network name=HOST busybox", "host-network", "allow_host_network"),
    Case("docker run --network NAME=Host,ALIAS=a busybox", "host-network", "allow_host_network"),
    Case("docker run --net 'name= host ' busybox", "host-network", "allow_host_network"),
    Case("docker run --network HOST busybox", "host-network", "allow_host_network"),
    Case("docker run --network name=Container:db busybox", "host-network", "allow_host_network"),
    Case("docker run --network 'name=\"host\"' busybox", "host-network", "allow_host_network"),
    Case("docker run --network name=n,driver-opt=com.docker.network.endpoint.sysctls=x=1 busybox", "network-option"),
    Case("docker run --mount type=bind,src=/proc,dst=/p,readonly,bind-propagation=RSHARED busybox", "host-namespace"),
    Case("docker run --mount type=bind,src=/proc,dst=/p,readonly,Bind-Propagation=Shared busybox", "host-namespace"),
    Case("podman run --mount type=bind,src=/proc,dst=/p,ro,bind-propagation=RSHARED busybox", "host-namespace"),
    Case("docker run --tmpfs /t:size=64m,rshared busybox", "host-namespace"),
    Case("podman run --security-opt seccomp=builtin busybox", "unconfined"),
    Case("podman run --security-opt seccomp:builtin busybox", "unconfined"),
    Case("podman run --network pasta busybox", "host-network", "allow_host_network"),
    Case("podman run --network pasta:--pcap,/etc/x busybox", "network-option"),
    Case("podman run --network a,pasta busybox", "host-network", "allow_host_network"),
    Case("podman run --network HOST busybox", "host-network", "allow_host_network"),
    Case("podman run --network slirp4netns:outbound_addr=lo busybox", "host-network", "allow_host_network"),
    # 3. Options that have the engine act on the host, outside the container.
    Case("docker run --log-driver fluentd --log-opt fluentd-address=unix:///run/docker.sock busybox", "log-driver"),
    Case("docker run --log-opt fluentd-address=unix:///run/docker.sock busybox", "log-option"),
    Case("docker run --log-opt syslog-address=tcp://127.0.0.1:22 busybox", "log-option"),
    Case("docker run --log-driver=gelf busybox", "log-driver"),
    Case("docker run --log-driver splunk --log-opt splunk-url=http://127.0.0.1:2375 busybox", "log-driver"),
    Case("docker run --log-driver syslog busybox", "log-driver"),
    Case("podman run --log-driver passthrough busybox", "log-driver"),
    Case("podman run --systemd=always busybox", "systemd-mode"),
    Case("podman run --systemd ALWAYS busybox", "systemd-mode"),
    Case("podman run busybox /sbin/init", "systemd-mode"),
    Case("podman run --entrypoint /usr/lib/systemd/systemd busybox", "systemd-mode"),
    Case('podman run --entrypoint \'["/bin/sh","-c","/usr/sbin/init"]\' busybox', "systemd-mode"),
    Case("podman run --systemd=true busybox /bin/sh -c /usr/local/sbin/init", "systemd-mode"),
    Case("podman run --entrypoint '' busybox /sbin/init", "systemd-mode"),
    Case("podman run --entrypoint '[]' busybox /usr/lib/systemd/systemd", "systemd-mode"),
    Case("podman run --mount type=image,src=evil/image,dst=/x busybox", "image-mount"),
    Case("docker run --mount type=image,src=evil/image,dst=/x busybox", "image-mount"),
    Case("docker run --link db:db busybox", "option-refused"),
    # 4. Resources the host cannot take back.
    Case("docker run --pids-limit=-1 busybox", "resource-limit"),
    Case("docker run --pids-limit 0 busybox", "resource-limit"),
    Case("podman run --pids-limit=-1 busybox", "resource-limit"),
    Case("podman run --pids-limit 0x7fffffff busybox", "resource-limit"),
    Case("podman run --pids-limit 99999999 busybox", "resource-limit"),
    Case("docker run --oom-score-adj=-1000 busybox", "resource-limit"),
    Case("podman run --oom-score-adj -1 busybox", "resource-limit"),
    Case("docker run --oom-kill-disable busybox", "resource-limit"),
    Case("podman run --oom-kill-disable=true busybox", "resource-limit"),
    Case("docker run --ulimit rtprio=99 busybox", "resource-limit"),
    Case("docker run --ulimit memlock=-1 busybox", "resource-limit"),
    Case("docker run --ulimit nofile=-2:-2 busybox", "resource-limit"),
    Case("docker run --ulimit nproc=9999999 busybox", "resource-limit"),
    Case("podman run --ulimit host busybox", "resource-limit"),
    Case("docker run --tmpfs /t busybox", "resource-limit"),
    Case("docker run --tmpfs /t:size=0 busybox", "resource-limit"),
    Case("docker run --tmpfs /t:size=50% busybox", "resource-limit"),
    Case("docker run --tmpfs /t:size=100g busybox", "resource-limit"),
    Case("podman run --tmpfs /t:size=010g busybox", "resource-limit"),
    Case("docker run --tmpfs /t:size=1m,size=100g busybox", "mount-syntax"),
    Case("docker run --tmpfs /t:size=1m,nr_blocks=0 busybox", "mount-syntax"),
    Case("podman run --tmpfs /t:size=1m:size=0 busybox", "mount-syntax"),
    Case("docker run --mount type=tmpfs,dst=/t busybox", "resource-limit"),
    Case("podman run --mount type=tmpfs,dst=/t,tmpfs-size=0 busybox", "resource-limit"),
    Case("podman run --mount type=ramfs,dst=/t busybox", "mount-syntax"),
    Case("podman run --shm-size=0 busybox", "resource-limit"),
    Case("docker run --shm-size 100g busybox", "resource-limit"),
    Case("docker run --storage-opt size=1T busybox", "resource-limit"),
    Case("docker run --storage-opt dm.basesize=1T busybox", "option-refused"),
    Case("docker run --cpu-rt-runtime 950000 busybox", "resource-limit"),
    Case("podman run --cpu-rt-runtime=950000 busybox", "resource-limit"),
    # 5. Containers that outlive their job, and container-id files that are not hostpipe's.
    Case("docker run --restart=always busybox", "restart-policy"),
    Case("docker run --restart unless-stopped busybox", "restart-policy"),
    Case("podman run --restart on-failure:3 busybox", "restart-policy"),
    Case("podman run --health-cmd true --health-on-failure=restart busybox", "restart-policy"),
    Case("docker run --cidfile @HOME/cid busybox", "cidfile"),
    Case("podman run --cidfile=/tmp/cid busybox", "cidfile"),
]

ALLOWED: list[str] = [
    "docker run --network name=mynet,alias=a busybox",
    "docker run --network mynet busybox",
    "docker run --security-opt seccomp=builtin busybox",
    "docker run --log-driver json-file --log-opt max-size=10m --log-opt max-file=3 busybox",
    "podman run --log-driver k8s-file --log-opt max-size=10mb,tag=job busybox",
    "docker run --restart=no --pids-limit 4096 --oom-score-adj 500 --ulimit nofile=1024:2048 busybox",
    "podman run --restart no --pids-limit=2048 --ulimit nofile=1024:1024,nproc=100 busybox",
    "docker run --tmpfs /t:size=64m,mode=1777 --mount type=tmpfs,dst=/u,tmpfs-size=64m --shm-size 128m busybox",
    "podman run --tmpfs /t:size=64m --mount type=tmpfs,dst=/u,tmpfs-size=1g busybox",
    "podman run --systemd=false busybox /sbin/init",
    "podman run --cap-add CHOWN,KILL --group-add 100,video --network slirp4netns:mtu=1500 busybox",
    "podman run --health-cmd true --health-on-failure=kill busybox",
]


def _case_id(case: Case) -> str:
    return case.line


@pytest.mark.parametrize(("policy", "rules"), POLICIES, ids=[name for name, _ in POLICIES])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_refuses_what_escapes_the_container_under_every_policy(
    case: Case, policy: str, rules: ArgumentRules, host: TmpHost
) -> None:
    """The line is refused by its rule under the built-in policy and every example policy's settings."""
    grammar = GRAMMARS[case.line.split()[0]]
    refused = refusal(grammar, case.line, host, rules)
    assert (refused.rule if refused else None) == case.expected(rules), (policy, refused)


@pytest.mark.parametrize("line", ALLOWED)
def test_allows_the_safe_spelling_of_each_option(line: str, host: TmpHost) -> None:
    """What each refusal says to write instead is allowed under the built-in policy."""
    assert refusal(GRAMMARS[line.split(maxsplit=1)[0]], line, host, builtin_policy().runtimes["docker"]) is None


def _readable(rules: ArgumentRules, host: TmpHost) -> str | None:
    """A host file this policy lets an --env-file name, if it opens any."""
    for path in (f"{HOME}/x.env", f"{HOME}/data/x.env", "/proc/cpuinfo"):
        if refusal(podman.GRAMMAR, f"podman run --env-file {path} busybox", host, rules) is None:
            return path
    return None


@pytest.mark.parametrize(("policy", "rules"), POLICIES, ids=[name for name, _ in POLICIES])
@pytest.mark.parametrize("option", ["--env-file", "--label-file"])
def test_every_file_of_a_list_is_judged_not_only_the_first(
    option: str, policy: str, rules: ArgumentRules, host: TmpHost
) -> None:
    """`--env-file A,/etc/shadow`: podman reads both files; the second is refused, and the refusal names it."""
    first = _readable(rules, host) or f"{HOME}/x.env"
    refused = refusal(podman.GRAMMAR, f"podman run {option} {first},/etc/shadow busybox", host, rules)
    assert refused is not None and refused.rule == "host-file", policy
    if _readable(rules, host):
        assert "/etc/shadow" in refused.reason and "the item refused is '/etc/shadow'" in refused.reason


@pytest.mark.parametrize(
    ("line", "argument", "words"),
    [
        (
            "podman run --log-opt max-size=10mb,path=/etc/cron.d/x busybox",
            "--log-opt max-size=10mb,path=/etc/cron.d/x",
            ("'path=/etc/cron.d/x'", "bind_roots"),
        ),
        ("docker run --network name=HOST busybox", "--network name=HOST", ("network namespace of host",)),
        ("podman run --systemd=always busybox", "--systemd=always", ("--systemd=false",)),
        ("docker run --restart=always busybox", "--restart=always", ("--restart=no", "allow_restart")),
        ("docker run --cidfile /tmp/c busybox", "--cidfile /tmp/c", ("leave it out",)),
        ("docker run --pids-limit=-1 busybox", "--pids-limit=-1", ("positive", "max_pids_limit")),
        ("docker run --tmpfs /t busybox", "--tmpfs /t", ("size=64m", "max_tmpfs_size")),
        ("docker run --log-driver fluentd busybox", "--log-driver fluentd", ("allow_log_drivers",)),
        ("podman run --group-add '\"keep-groups\"' busybox", "--group-add '\"keep-groups\"'", ("without quotes",)),
    ],
)
def test_refusal_names_the_argument_and_what_to_write_instead(
    line: str, argument: str, words: tuple[str, ...], host: TmpHost
) -> None:
    """A refusal quotes the option as written, names the element that broke it, and says what would pass."""
    refused = refusal(GRAMMARS[line.split(maxsplit=1)[0]], line, host, builtin_policy().runtimes["docker"])
    assert refused is not None
    assert refused.argument == argument
    for word in words:
        assert word in refused.reason, (word, refused.reason)


def test_every_example_policy_is_judged() -> None:
    """The table above covers the built-in policy and at least one table from each example policy file."""
    names = {name.split("[")[0] for name, _ in POLICIES}
    assert names >= {"built-in", *(path.name for path in EXAMPLES.glob("*.toml"))}
    assert len(names) >= 5


def test_a_site_key_relaxes_only_its_own_refusal(host: TmpHost) -> None:
    """Each new policy key opens what it names and nothing else."""
    relaxations: list[tuple[str, dict[str, Any]]] = [
        ("docker run --restart=always busybox", {"allow_restart": True}),
        ("docker run --log-driver fluentd --log-opt fluentd-address=a:1 busybox",
         {"allow_log_drivers": ("fluentd",), "allow_log_options": ("fluentd-address",)}),
        ("podman run --mount type=image,src=x,dst=/x busybox", {"allow_image_mounts": True}),
        ("docker run --pids-limit=-1 busybox", {"max_pids_limit": -1}),
        ("docker run --pids-limit=100000 busybox", {"max_pids_limit": 100_000}),
        ("docker run --oom-score-adj=-500 busybox", {"min_oom_score_adj": -500}),
        ("docker run --tmpfs /t busybox", {"max_tmpfs_size": -1}),
        ("docker run --tmpfs /t:size=4g busybox", {"max_tmpfs_size": 4 * 1024**3}),
        ("docker run --storage-opt size=10g busybox", {"max_storage_size": 20 * 1024**3}),
        ("docker run --ulimit memlock=-1 busybox", {"ulimits": {"memlock": -1}}),
        ("podman run --systemd=always busybox", {"allow_options": ("--systemd",)}),
        ("docker run --oom-kill-disable busybox", {"allow_options": ("--oom-kill-disable",)}),
    ]  # fmt: skip
    for line, keys in relaxations:
        grammar = GRAMMARS[line.split()[0]]
        assert refusal(grammar, line, host, ArgumentRules()) is not None, line
        assert refusal(grammar, line, host, ArgumentRules(**keys)) is None, (line, keys)
        # The same keys open nothing of another class.
        assert refusal(grammar, "docker run --network name=HOST busybox", host, ArgumentRules(**keys)) is not None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("allow_restart", "yes"),
        ("allow_restart", 1),
        ("allow_image_mounts", "on"),
        ("allow_host_network", "true"),
        ("allow_ports", 1),
        ("max_pids_limit", "4096"),
        ("max_pids_limit", 4096.0),
        ("max_pids_limit", True),
        ("max_pids_limit", 0),
        ("min_oom_score_adj", -1001),
        ("max_tmpfs_size", "1g"),
        ("ulimits", {"nofile": "1024"}),
        ("ulimits", {"nofile": -2}),
        ("allow_log_drivers", "fluentd"),
        ("allow_options", ["--privileged", 1]),
        ("bind_roots", "/data"),
        ("env", {"DOCKER_HOST": 1}),
    ],
)
def test_policy_keys_take_only_their_toml_type(key: str, value: Any) -> None:
    """A policy value of the wrong TOML type stops the policy from loading, and the error names the key."""
    table = {"runtimes": {"docker": {key: value}}}
    with pytest.raises(ValueError, match=key):
        Policy.model_validate(table)
