"""What docker and podman really make of an argv, pinned against the real programs, next to hostpipe's decision.

hostpipe judges the value the engine receives, not the words of the line. These tests show what that value is:
for docker, the JSON body the real docker 28 CLI sends to a recording engine (see `recording_engine`), after
its own lower-casing, trimming, CSV reading and number parsing; for podman, what the real podman 4.3 records
in a container it creates in the private store (`podman create` + `podman inspect`; nothing runs). Each case
then checks that hostpipe reads the same value and decides on it. What only a newer engine does is pinned at
the argv level in tests/core/runtimes and said so there.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hostpipe.core.runtimes.base import ArgumentRules, ArgvRefused, Grammar, Host
from hostpipe.core.runtimes.docker import GRAMMAR as DOCKER
from hostpipe.core.runtimes.govalues import ram_in_bytes
from hostpipe.core.runtimes.podman import GRAMMAR as PODMAN

from .recording_engine import RecordingEngine
from .support import IMAGE, Hostpipe, Podman, policy_toml

pytestmark = pytest.mark.e2e


class _Host:
    """The host as the daemon sees it, with HOME at `home`."""

    def __init__(self, home: Path) -> None:
        self.home = str(home)

    def realpath(self, path: str) -> str:
        return str(Path(path).resolve())


def decision(grammar: Grammar, words: list[str], host: Host, **rules: Any) -> ArgvRefused | None:
    """hostpipe's refusal of `words` (argv[1:]) under the built-in rules plus `rules`, or None when allowed."""
    try:
        grammar.check(grammar.parse(tuple(words)), ArgumentRules(**rules), host)
    except ArgvRefused as refused:
        return refused
    return None


def dig(document: Any, path: str) -> Any:
    """The value at a dotted path (`HostConfig.Mounts.0.Type`) of a JSON document."""
    for part in path.split("."):
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


# --- docker: the body the CLI sends ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(e2e_root: Path) -> Iterator[RecordingEngine]:
    recording = RecordingEngine(e2e_root / "rec.sock", e2e_root / "rec-docker-config")
    recording.start()
    yield recording
    recording.stop()


@pytest.fixture
def host(tmp_path: Path) -> _Host:
    (tmp_path / "home").mkdir()
    return _Host(tmp_path / "home")


DOCKER_READS: list[tuple[list[str], str, Any, str | None]] = [
    # The CLI reads `--network k=v,...` as CSV, lower-cases every field and trims spaces: this is the host network.
    (["--network", "name=HOST"], "HostConfig.NetworkMode", "host", "host-network"),
    (["--network", "gw-priority=1,name= HOST "], "HostConfig.NetworkMode", "host", "host-network"),
    # Without a `k=v` field it sends the word as written (refused in any case all the same).
    (["--network", "HOST"], "HostConfig.NetworkMode", "HOST", "host-network"),
    (["--network", "name=MyNet,alias=a"], "HostConfig.NetworkMode", "mynet", None),
    # `--mount` keys, type and propagation are lower-cased: RSHARED is rshared.
    (
        ["--mount", "type=bind,src=/tmp,dst=/d,bind-propagation=RSHARED"],
        "HostConfig.Mounts.0.BindOptions.Propagation",
        "rshared",
        "host-namespace",
    ),
    (["--mount", "TYPE=BIND,SRC=/tmp,DST=/d"], "HostConfig.Mounts.0.Type", "bind", "bind-outside-roots"),
    (["--mount", "type=tmpfs,dst=/t,tmpfs-size=1.5m"], "HostConfig.Mounts.0.TmpfsOptions.SizeBytes", 1572864, None),
    # docker's list options (ListOpts) keep each value whole: no CSV, one element each.
    (["--log-opt", "max-size=1m,path=/etc/x"], "HostConfig.LogConfig.Config", {"max-size": "1m,path=/etc/x"}, None),
    (["-e", "A=1,B=2"], "Env", ["A=1,B=2"], None),
    (["--group-add", "1,2"], "HostConfig.GroupAdd", ["1,2"], None),
    # The CLI upper-cases a capability and prefixes CAP_, still one element: one (invalid) capability name.
    (["--cap-add", "chown,kill"], "HostConfig.CapAdd", ["CAP_CHOWN,KILL"], "capabilities"),
    (["--cap-add", "sys_admin"], "HostConfig.CapAdd", ["CAP_SYS_ADMIN"], "capabilities"),
    # --tmpfs is cut at its first colon; without a size the kernel gives it half the host's memory.
    (["--tmpfs", "/t"], "HostConfig.Tmpfs", {"/t": ""}, "resource-limit"),
    (["--tmpfs", "/t:size=64m:x"], "HostConfig.Tmpfs", {"/t": "size=64m:x"}, "mount-syntax"),
    (["--tmpfs", "/t:size=64m"], "HostConfig.Tmpfs", {"/t": "size=64m"}, None),
    # `builtin` is docker's keyword for its default seccomp profile; the CLI reads no file for it.
    (["--security-opt", "seccomp=builtin"], "HostConfig.SecurityOpt", ["seccomp=builtin"], None),
    (
        ["--log-driver", "fluentd", "--log-opt", "fluentd-address=unix:///run/docker.sock"],
        "HostConfig.LogConfig",
        {"Type": "fluentd", "Config": {"fluentd-address": "unix:///run/docker.sock"}},
        "log-driver",
    ),
    (["--restart", "always"], "HostConfig.RestartPolicy.Name", "always", "restart-policy"),
    (["--restart", "no"], "HostConfig.RestartPolicy.Name", "no", None),
    # pflag reads int options with base 0: 010 is 8. hostpipe refuses such a spelling rather than guess.
    (["--pids-limit", "010"], "HostConfig.PidsLimit", 8, "resource-limit"),
    (["--pids-limit", "-1"], "HostConfig.PidsLimit", -1, "resource-limit"),
    (["--pids-limit", "4096"], "HostConfig.PidsLimit", 4096, None),
    (
        ["--ulimit", "nofile=-2:-2"],
        "HostConfig.Ulimits",
        [{"Name": "nofile", "Hard": -2, "Soft": -2}],
        "resource-limit",
    ),
    (["--oom-score-adj", "-1000"], "HostConfig.OomScoreAdj", -1000, "resource-limit"),
    (["--storage-opt", "size=1T"], "HostConfig.StorageOpt", {"size": "1T"}, "resource-limit"),
    (["--link", "db:db"], "HostConfig.Links", ["db:db"], "option-refused"),
    # Namespace modes, restart policies and log drivers go to the engine as written: only exact words pass.
    (["--ipc", "HOST"], "HostConfig.IpcMode", "HOST", "host-namespace"),
    (["--restart", "ALWAYS"], "HostConfig.RestartPolicy.Name", "ALWAYS", "restart-policy"),
    (["--log-driver", "JSON-FILE"], "HostConfig.LogConfig.Type", "JSON-FILE", "log-driver"),
]


@pytest.mark.parametrize("option", ["--pid", "--userns", "--uts", "--cgroupns"])
def test_docker_cli_itself_refuses_namespace_modes_in_another_case(
    option: str, engine: RecordingEngine, host: _Host
) -> None:
    """`--pid HOST` never reaches the engine (the CLI finds it invalid); hostpipe refuses it as well."""
    body, output = engine.create(["run", option, "HOST", "busybox"])

    assert body is None and "invalid" in output
    refused = decision(DOCKER, ["run", option, "HOST", "busybox"], host)
    assert refused is not None and refused.rule == "host-namespace"


@pytest.mark.parametrize(
    ("words", "path", "received", "rule"), DOCKER_READS, ids=[shlex.join(case[0]) for case in DOCKER_READS]
)
def test_docker_cli_sends_what_hostpipe_judges(
    words: list[str], path: str, received: Any, rule: str | None, engine: RecordingEngine, host: _Host
) -> None:
    """The real docker CLI sends the engine the value hostpipe judged, and hostpipe decides on that value."""
    body, output = engine.create(["run", *words, "busybox", "true"])

    assert body is not None, output
    assert dig(body, path) == received
    refused = decision(DOCKER, ["run", *words, "busybox"], host)
    assert (refused.rule if refused else None) == rule, refused


@pytest.mark.parametrize("size", ["64m", "1.5g", "512 KiB", "100b", "0.5k", "3.3m", "7", "2.25MB"])
def test_reads_docker_sizes_to_the_byte(size: str, engine: RecordingEngine) -> None:
    """hostpipe reads a docker size (`--shm-size`, tmpfs-size) to the same number of bytes as the CLI sends."""
    body, output = engine.create(["run", "--shm-size", size, "busybox"])

    assert body is not None, output
    assert ram_in_bytes(size) == body["HostConfig"]["ShmSize"]


def test_docker_cli_reads_a_seccomp_profile_file_itself(engine: RecordingEngine, tmp_path: Path) -> None:
    """Any other seccomp value is a file the CLI reads on the host and sends whole: a host file to judge."""
    (tmp_path / "profile.json").write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')

    body, output = engine.create(["run", "--security-opt", "seccomp=profile.json", "busybox"], cwd=tmp_path)

    assert body is not None, output
    assert body["HostConfig"]["SecurityOpt"] == ['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']


# --- podman: the container it creates ----------------------------------------------------------------------


def podman_create(
    engine: Podman, args: list[str], cwd: Path, command: tuple[str, ...] = ("true",)
) -> dict[str, Any] | str:
    """`podman create ARGS IMAGE COMMAND` in the private store: the container's inspect document, or the error."""
    created = subprocess.run(
        [engine.executable, "create", *args, IMAGE, *command],
        env=engine.env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if created.returncode != 0:
        return created.stderr
    inspected = engine.run("inspect", created.stdout.strip(), check=True)
    document = json.loads(inspected.stdout)
    assert isinstance(document, list) and len(document) == 1
    return dict(document[0])


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A folder a site opened (`data/`, with a.env and a.labels) and a secret outside it (`secret/`)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "secret").mkdir()
    (tmp_path / "data" / "a.env").write_text("A=1\n")
    (tmp_path / "data" / "a.labels").write_text("a=1\n")
    (tmp_path / "secret" / "shadow.env").write_text("ROOT_SECRET=hunter2\n")
    return tmp_path


PODMAN_READS: list[tuple[str, str, Any, str | None]] = [
    # podman's StringSlice options are CSV: `max-size=10mb,path=FILE` sets the log file conmon writes as root.
    ("--log-opt max-size=10mb,path=@/secret/log", "HostConfig.LogConfig.Path", "@/secret/log", "host-file"),
    # ... and it lower-cases log-opt keys.
    ("--log-opt PATH=@/secret/log", "HostConfig.LogConfig.Path", "@/secret/log", "host-file"),
    ("--log-opt tag=x,driver=passthrough", "HostConfig.LogConfig.Type", "passthrough", "log-driver"),
    ("--log-opt max-size=10mb,tag=job", "HostConfig.LogConfig.Size", "10MB", None),
    # CSV quotes: `"keep-groups"` is keep-groups to podman (its annotation below), not a group name.
    ("--group-add '\"keep-groups\"'", "Config.Annotations.run\\.oci\\.keep_original_groups", "1", "ambiguous-value"),
    ("--cap-add NET_ADMIN,SYS_PTRACE", "HostConfig.CapAdd", ["CAP_NET_ADMIN", "CAP_SYS_PTRACE"], "capabilities"),
    (
        "--ulimit nofile=10:20,nproc=30:40",
        "HostConfig.Ulimits",
        [{"Name": "RLIMIT_NOFILE", "Soft": 10, "Hard": 20}, {"Name": "RLIMIT_NPROC", "Soft": 30, "Hard": 40}],
        None,
    ),
    # StringArray options keep each value whole.
    ("--tmpfs /t:size=1m,mode=755", "HostConfig.Tmpfs./t", "size=1m,mode=755,rw,rprivate,nosuid,nodev,tmpcopyup", None),
    # podman lower-cases --systemd, and runs init or systemd as the command in systemd mode by default.
    ("--systemd=ALWAYS", "Config.SystemdMode", True, "systemd-mode"),
    ("--entrypoint /sbin/init --", "Config.SystemdMode", True, "systemd-mode"),
    ('--entrypoint \'["/bin/sh","-c","/usr/sbin/init"]\' --', "Config.SystemdMode", True, "systemd-mode"),
    # An entrypoint of one empty word is left out: the arguments are the command.
    ("--entrypoint '' -- /sbin/init", "Config.SystemdMode", True, "systemd-mode"),
    ("--systemd=false -- /sbin/init", "Config.SystemdMode", None, None),
    # An image mount needs no pattern of the policy's `images` to match.
    (f"--mount type=image,src={IMAGE},dst=/x", "Mounts.0.Type", "image", "image-mount"),
    ("--restart=always", "HostConfig.RestartPolicy.Name", "always", "restart-policy"),
    ("--pids-limit=-1", "HostConfig.PidsLimit", 0, "resource-limit"),
    ("--pids-limit=100", "HostConfig.PidsLimit", 100, None),
    ("--oom-score-adj=-1000", "HostConfig.OomScoreAdj", -1000, "resource-limit"),
]


def _dig_podman(document: dict[str, Any], path: str) -> Any:
    # Annotation names hold dots; `\.` in a path is a dot of the name.
    parts = [part.replace("\0", ".") for part in path.replace("\\.", "\0").split(".")]
    value: Any = document
    for part in parts[:-1]:
        value = value[int(part)] if isinstance(value, list) else value[part]
    # podman leaves false and empty fields out of its JSON (`SystemdMode` when not in systemd mode).
    return value[int(parts[-1])] if isinstance(value, list) else value.get(parts[-1])


@pytest.mark.parametrize(("args", "path", "received", "rule"), PODMAN_READS, ids=[c[0] for c in PODMAN_READS])
def test_podman_creates_what_hostpipe_judges(
    args: str, path: str, received: Any, rule: str | None, podman: Podman, files: Path
) -> None:
    """The real podman makes of the argv what hostpipe judged, and hostpipe decides on that value."""
    words = [w.replace("@", str(files)) for w in shlex.split(args)]
    expected = received.replace("@", str(files)) if isinstance(received, str) else received
    # `OPTIONS -- COMMAND`: the command after the image (none after a bare `--`); else `true`.
    command: tuple[str, ...] = ("true",)
    if "--" in words:
        words, command = words[: words.index("--")], tuple(words[words.index("--") + 1 :])

    created = podman_create(podman, words, files, command)

    assert isinstance(created, dict), created
    assert _dig_podman(created, path) == expected
    refused = decision(PODMAN, ["run", *words, IMAGE, *command], _Host(files), bind_roots=(f"{files}/data",))
    assert (refused.rule if refused else None) == rule, refused


@pytest.mark.parametrize(
    ("option", "path", "secret"),
    [("--env-file", "Config.Env", "ROOT_SECRET=hunter2"), ("--label-file", "Config.Labels", "ROOT_SECRET")],
)
def test_podman_reads_every_file_of_a_list_and_hostpipe_judges_each(
    option: str, path: str, secret: str, podman: Podman, files: Path
) -> None:
    """`--env-file A,B` reads B too: with A in an open folder, hostpipe refuses the line and names B."""
    first = files / "data" / ("a.env" if option == "--env-file" else "a.labels")
    second = files / "secret" / "shadow.env"
    words = [option, f"{first},{second}"]

    created = podman_create(podman, words, files)

    assert isinstance(created, dict), created
    assert secret in _dig_podman(created, path)
    for root in ("bind_roots", "read_only_roots"):
        assert decision(PODMAN, ["run", option, str(first), IMAGE], _Host(files), **{root: (f"{files}/data",)}) is None
        refused = decision(PODMAN, ["run", *words, IMAGE], _Host(files), **{root: (f"{files}/data",)})
        assert refused is not None and refused.rule == "host-file"
        assert f"the item refused is '{second}'" in refused.reason


def test_podman_seccomp_builtin_is_a_file_in_the_working_folder(podman: Podman, files: Path) -> None:
    """podman loads `seccomp=builtin` from a file named builtin (docker's keyword is no keyword to podman)."""
    missing = podman_create(podman, ["--security-opt", "seccomp=builtin"], files)
    (files / "builtin").write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    loaded = podman_create(podman, ["--security-opt", "seccomp=builtin"], files)

    assert isinstance(missing, str) and "open builtin" in missing
    assert isinstance(loaded, dict), loaded
    refused = decision(PODMAN, ["run", "--security-opt", "seccomp=builtin", IMAGE], _Host(files))
    assert refused is not None and refused.rule == "unconfined"
    # Where a site allows other profiles, the file is judged as any host file the engine reads.
    opened = decision(PODMAN, ["run", "--security-opt", "seccomp=builtin", IMAGE], _Host(files), allow_unconfined=True)
    assert opened is not None and opened.rule == "host-file"


def test_podman_reads_bind_propagation_as_written(podman: Podman, files: Path) -> None:
    """podman refuses `RSHARED` (it does not lower-case): hostpipe's any-case refusal is the stricter reading."""
    words = ["--mount", f"type=bind,src={files}/data,dst=/d,bind-propagation=RSHARED"]

    created = podman_create(podman, words, files)

    assert isinstance(created, str) and 'invalid option type "RSHARED"' in created
    refused = decision(PODMAN, ["run", *words, IMAGE], _Host(files), bind_roots=(f"{files}/data",))
    assert refused is not None and refused.rule == "host-namespace"


def test_podman_4_3_reads_pasta_as_a_network_name(podman: Podman, files: Path) -> None:
    """podman 4.3 has no pasta mode (4.4 added it); hostpipe refuses pasta for the podman that does."""
    created = podman_create(podman, ["--network", "pasta:--pcap,/tmp/x"], files)

    assert isinstance(created, str) and "pasta" in created
    refused = decision(
        PODMAN, ["run", "--network", "pasta:--pcap,/tmp/x", IMAGE], _Host(files), allow_host_network=True
    )
    assert refused is not None and refused.rule == "network-option"


@pytest.mark.parametrize(
    ("words", "what"),
    [(["--tmpfs", "/t"], "/t"), (["--shm-size=0"], "/dev/shm")],
)
def test_unsized_tmpfs_takes_host_memory_and_is_refused(
    words: list[str], what: str, podman: Podman, files: Path
) -> None:
    """A tmpfs without a size (or podman's --shm-size=0) is as large as half the host's memory, or unlimited."""
    ran = podman.run("run", "--rm", *words, IMAGE, "df", "-k", what, check=True)

    blocks = int(ran.stdout.splitlines()[-1].split()[1])
    assert blocks == 0 or blocks > 1024 * 1024  # 0: unlimited; else half the host's memory, more than 1 GiB
    refused = decision(PODMAN, ["run", *words, IMAGE], _Host(files))
    assert refused is not None and refused.rule == "resource-limit"
    sized = podman.run("run", "--rm", "--tmpfs", "/t:size=64m", IMAGE, "df", "-k", "/t", check=True)
    assert sized.stdout.splitlines()[-1].split()[1] == "65536"
    assert decision(PODMAN, ["run", "--tmpfs", "/t:size=64m", IMAGE], _Host(files)) is None


# --- hostpipe itself: check and serve --------------------------------------------------------------------

REFUSED_LINES = [
    ("podman run --log-opt max-size=10mb,path=@/secret/log localhost/busybox true", "host-file", "path=@/secret/log"),
    (
        "podman run --env-file @/data/a.env,@/secret/shadow.env localhost/busybox true",
        "host-file",
        "@/secret/shadow.env",
    ),
    ("podman run --group-add '\"keep-groups\"' localhost/busybox true", "ambiguous-value", "without quotes"),
    ("docker run --network name=HOST localhost/busybox true", "host-network", "allow_host_network"),
    ("podman run --security-opt seccomp=builtin localhost/busybox true", "unconfined", "builtin"),
    ("podman run --network pasta:--pcap,/tmp/x localhost/busybox true", "network-option", "pasta without options"),
    ("docker run --log-driver fluentd localhost/busybox true", "log-driver", "allow_log_drivers"),
    ("podman run --systemd=always localhost/busybox true", "systemd-mode", "--systemd=false"),
    ("podman run --mount type=image,src=evil/x,dst=/x localhost/busybox true", "image-mount", "allow_image_mounts"),
    ("docker run --pids-limit=-1 localhost/busybox true", "resource-limit", "max_pids_limit"),
    ("docker run --tmpfs /t localhost/busybox true", "resource-limit", "size=64m"),
    ("podman run --restart=always localhost/busybox true", "restart-policy", "allow_restart"),
    ("docker run --cidfile /tmp/c localhost/busybox true", "cidfile", "hostpipe's own"),
]


@pytest.fixture
def site(e2e_root: Path, files: Path) -> Hostpipe:
    """A hostpipe folder (not started) whose policy opens `data/` to docker and podman."""
    folder = Path(tempfile.mkdtemp(prefix="hc", dir=e2e_root))
    table = {"subcommands": ["run"], "bind_roots": [f"{files}/data"]}
    daemon = Hostpipe(folder, policy_toml({}, {"docker": table, "podman": table}))
    daemon.home.mkdir(parents=True)
    daemon.policy.write_text(daemon.policy_text)
    return daemon


def test_check_explains_each_refusal_with_rule_element_and_fix(site: Hostpipe, files: Path) -> None:
    """`hostpipe check --json` gives each line's rule, the argument as written and a reason naming what broke it."""
    lines = [line.replace("@", str(files)) for line, _, _ in REFUSED_LINES]
    (site.folder / "lines.txt").write_text("\n".join(lines) + "\n")

    checked = site.cli("check", "--json", "--file", str(site.folder / "lines.txt"))

    assert checked.returncode == 1, checked.stderr
    decisions = json.loads(checked.stdout)
    for (line, rule, word), made in zip(REFUSED_LINES, decisions, strict=True):
        assert (made["allowed"], made["rule"]) == (False, rule), (line, made)
        assert made["argument"] and made["argument"] in made["line"], made
        assert word.replace("@", str(files)) in made["reason"], (word, made["reason"])


def test_serve_refuses_list_escapes_and_runs_the_plain_line(
    start_hostpipe: Callable[..., Hostpipe], podman_runtime: dict[str, Any], files: Path
) -> None:
    """Through the pipe, the log-file and env-file escapes are refused and leave no trace; the plain line runs."""
    target = files / "secret" / "written-by-conmon"
    hostpipe = start_hostpipe({"podman": {**podman_runtime, "bind_roots": [f"{files}/data"]}})
    data, secret = files / "data", files / "secret"

    hostpipe.submit(f"HOSTPIPE_ID=log podman run --rm --log-opt max-size=10mb,path={target} {IMAGE} echo pwned")
    hostpipe.submit(f"HOSTPIPE_ID=env podman run --rm --env-file {data}/a.env,{secret}/shadow.env {IMAGE} env")
    hostpipe.submit(f"HOSTPIPE_ID=ok podman run --rm --env-file {data}/a.env {IMAGE} env")

    log, env, ok = (hostpipe.wait_done(name) for name in ("log", "env", "ok"))

    assert (log["state"], log["rule"]) == ("refused", "host-file")
    assert (env["state"], env["rule"]) == ("refused", "host-file")
    assert str(secret / "shadow.env") in env["reason"]
    assert not target.exists()
    assert ok["state"] == "succeeded", Hostpipe.log_text(ok)
    output = Hostpipe.log_text(ok)
    assert "A=1" in output and "hunter2" not in output
