"""No job can change what later jobs run with: a real `hostpipe serve`, real files, and an apptainer stand-in
that writes where apptainer's binds would let a job write (tests/standins/binding/mounts).

Each route starts from what a pod could really do: an apptainer job writing into the home folder apptainer
binds by default (the policy file, reloaded a second later), a site whose bind roots or home bind open the
state folder, docker's or podman's client configuration, apptainer's own, or a folder on PATH.
"""

from __future__ import annotations

import json
import signal
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import STANDINS, SYSTEM_PATH, Daemon, wait_for

BINDING = STANDINS / "binding"
"""apptainer and singularity stand-ins that write only into what apptainer binds read-write."""

EVIL_POLICY = 'runtimes = { docker = { allow_options = ["--privileged"], allow_host_namespaces = true } }'
"""What a job would write over the policy file: docker --privileged --pid=host, a root shell on the host."""

ESCAPE = "docker run --privileged --pid=host test/x true"


@dataclass
class BuiltinDaemon(Daemon):
    """`hostpipe serve` as the README's first command runs it: no --policy, the policy's default location."""

    def args(self) -> list[str]:
        return ["--pipe", str(self.pipe), "--state-dir", str(self.state_dir)]


def write_job(path: Path | str, text: str, runtime: str = "apptainer", options: tuple[str, ...] = ()) -> str:
    """A JSON line whose job tries to write `text` to `path` from inside an apptainer container."""
    return json.dumps({"argv": [runtime, "exec", *options, "docker://x", "write", str(path), text]}) + "\n"


def env_for(root: Path, standin_env: dict[str, str], *path: Path | str) -> dict[str, str]:
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    folders = ":".join(str(p) for p in (*path, BINDING, STANDINS)) + ":" + SYSTEM_PATH
    return {**standin_env, "HOME": str(home), "PATH": folders}


def serve(root: Path, env: dict[str, str], policy: str | None) -> Daemon:
    """A daemon under `root`, with `policy` written beside HOME (None: the built-in policy); not started."""
    stderr = root / "serve.log"
    if policy is None:
        state = Path(env["HOME"]) / ".local" / "state" / "hostpipe"
        default = Path(env["HOME"]) / ".config" / "hostpipe" / "policy.toml"
        return BuiltinDaemon(root / "pipe" / "vk-cmd", state, default, env, stderr_path=stderr)
    file = root / "policy.toml"
    file.write_text(textwrap.dedent(policy))
    return Daemon(root / "pipe" / "vk-cmd", root / "state", file, env, stderr_path=stderr)


@pytest.fixture
def started(daemon_root: Path):
    daemons: list[Daemon] = []
    yield daemons
    for daemon in daemons:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.kill_all()  # the holder and the daemon it runs: killing the holder alone orphans the daemon


def refusal(daemon: Daemon, started: list[Daemon]) -> str:
    """Start `daemon`, which must refuse to serve: exit status 3 and one line on stderr, which is returned."""
    started.append(daemon)
    with pytest.raises(AssertionError, match="exited 3"):
        daemon.start()
    assert daemon.stderr_path is not None
    (line,) = daemon.stderr_path.read_text().splitlines()
    assert not daemon.pipe.exists()
    return line


# --- the built-in policy --------------------------------------------------------------------------------


def test_apptainer_job_cannot_rewrite_the_policy_later_jobs_run_under(daemon_root, standin_env, started):
    """Under the built-in policy an apptainer job cannot write ~/.config/hostpipe/policy.toml, so a reload
    that follows does not let `docker run --privileged --pid=host` through."""
    env = env_for(daemon_root, standin_env)
    daemon = serve(daemon_root, env, policy=None)
    started.append(daemon.start())
    target = Path(env["HOME"]) / ".config" / "hostpipe" / "policy.toml"
    daemon.write(write_job(target, EVIL_POLICY))
    (job,) = daemon.wait_records(1)
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGHUP)
    wait_for(lambda: any(e["event"] == "policy_reloaded" for e in daemon.events()))
    daemon.write(ESCAPE + "\n")
    escape = daemon.wait_records(2)[1]
    assert (escape["state"], escape["rule"]) == ("refused", "privileged")
    assert not target.exists()
    assert job["state"] == "failed"
    log = Path(job["log"]).read_text()
    assert log.splitlines()[0].split()[:3] == ["apptainer", "exec", "--no-mount=home,cwd"]
    assert "Read-only file system" in log


def test_apptainer_job_cannot_write_into_the_state_folder(daemon_root, standin_env, started):
    """The state folder (records, logs, container id files) lies in HOME, which no apptainer job sees."""
    env = env_for(daemon_root, standin_env)
    daemon = serve(daemon_root, env, policy=None)
    started.append(daemon.start())
    planted = daemon.state_dir / "cid" / "1.cid"
    daemon.write(write_job(planted, "the-id-of-another-pods-container"))
    (job,) = daemon.wait_records(1)
    assert job["state"] == "failed" and not planted.exists()


def test_builtin_policy_leaves_shifter_out_and_says_why(daemon_root, standin_env, started):
    """shifter mounts HOME into every job, where the built-in policy's file and the state folder lie: the
    daemon starts, warns once, and refuses shifter lines with the reason and what to do."""
    env = env_for(daemon_root, standin_env)
    daemon = serve(daemon_root, env, policy=None)
    started.append(daemon.start())
    (warning,) = [e for e in daemon.events() if e["event"] == "runtime_withheld"]
    assert warning["runtime"] == "shifter"
    daemon.write("shifter --image=godlovedc/lolcow:latest --entrypoint\n")
    daemon.write("docker run godlovedc/lolcow:latest\n")
    withheld, docker = daemon.wait_records(2)
    assert (withheld["state"], withheld["rule"], withheld["argument"]) == ("refused", "runtime-withheld", "shifter")
    assert withheld["reason"] == warning["reason"]
    assert f"shifter jobs can write {env['HOME']}" in withheld["reason"]
    assert "--policy /etc/hostpipe/policy.toml" in withheld["reason"]
    assert docker["state"] == "succeeded"


# --- a policy file whose jobs could change what later jobs run with ---------------------------------------

ROUTES = [
    pytest.param(
        '[runtimes.apptainer]\nhome_bind = "read-write"\n',
        "in_home",
        'apptainer jobs can write {home} (home_bind = "read-write" in [runtimes.apptainer]), which holds the '
        "policy file {home}/policy.toml",
        "--policy /etc/hostpipe/policy.toml",
        id="home-bind-and-the-policy-file",
    ),
    pytest.param(
        '[runtimes.apptainer]\nbind_roots = ["~"]\n',
        "state_in_home",
        'apptainer jobs can write {home} (bind_roots lists "~" in [runtimes.apptainer]), which holds the state folder',
        "--state-dir /var/lib/hostpipe",
        id="bind-root-and-the-state-folder",
    ),
    pytest.param(
        '[runtimes.docker]\nbind_roots = ["{root}"]\n',
        "",
        'docker jobs can write {root} (bind_roots lists "{root}" in [runtimes.docker]), which holds the policy file',
        "--policy /etc/hostpipe/policy.toml",
        id="docker-bind-root-holding-the-daemon",
    ),
    pytest.param(
        "[runtimes.docker]\n[runtimes.shifter]\n",
        "",
        "shifter jobs can write {home} (shifter mounts the home folders into every job, as udiRoot.conf's siteFs "
        "says, whatever a line asks), which holds the docker client configuration docker reads {home}/.docker",
        'env = { DOCKER_CONFIG = "/etc/hostpipe/docker" } in [runtimes.docker]',
        id="shifter-and-docker-config",
    ),
    pytest.param(
        '[runtimes.docker]\nenv = {{ DOCKER_CONFIG = "{root}/docker" }}\n[runtimes.shifter]\n',
        "",
        "which holds the ssh configuration docker uses for ssh:// hosts and contexts {home}/.ssh",
        "from another account",
        id="shifter-and-docker-ssh",
    ),
    pytest.param(
        '[runtimes.podman]\nbind_roots = ["~/.config"]\n',
        "",
        'podman jobs can write {home}/.config (bind_roots lists "~/.config" in [runtimes.podman]), which holds '
        "podman's user configuration (containers.conf, registries.conf, storage.conf, policy.json) "
        "{home}/.config/containers",
        'env = { XDG_CONFIG_HOME = "/etc/hostpipe/config" } in [runtimes.podman]',
        id="podman-config",
    ),
    pytest.param(
        '[runtimes.podman]\nbind_roots = ["~/.local"]\n',
        "",
        "which holds podman's rootless image and container storage {home}/.local/share/containers",
        'env = { XDG_DATA_HOME = "/etc/hostpipe/data" }',
        id="podman-storage",
    ),
    pytest.param(
        '[runtimes.apptainer]\nbind_roots = ["~/.apptainer"]\n',
        "",
        'apptainer jobs can write {home}/.apptainer (bind_roots lists "~/.apptainer" in [runtimes.apptainer]), '
        "which is apptainer's user configuration and image cache",
        'env = { APPTAINER_CONFIGDIR = "/etc/hostpipe/apptainer" }',
        id="apptainer-config",
    ),
    pytest.param(
        "[runtimes.shifter]\n",
        "bin_in_home",
        "shifter jobs can write {home} (shifter mounts the home folders into every job, as udiRoot.conf's siteFs "
        "says, whatever a line asks), which holds a folder on PATH, where the daemon resolves runtimes on every reload",
        "a PATH that leaves out every folder a job can write",
        id="shifter-and-path",
    ),
    pytest.param(
        "[runtimes.shifter]\n",
        "relative_path",
        "shifter jobs can write {home} (shifter mounts the home folders into every job, as udiRoot.conf's siteFs "
        "says, whatever a line asks), which is a folder on PATH",
        "a PATH that leaves out",
        id="shifter-and-relative-path-entry",
    ),
    pytest.param(
        '[runtimes.apptainer]\nexecutable = "{root}/opt/apptainer"\nbind_roots = ["{root}/opt"]\n',
        "executable_in_root",
        "which holds apptainer's executable {root}/opt/apptainer",
        'set executable = "/usr/bin/apptainer"',
        id="executable-under-a-bind-root",
    ),
]


@pytest.mark.parametrize(("policy", "layout", "says", "fix"), ROUTES)
def test_policy_whose_jobs_could_change_later_jobs_stops_serve_saying_why_and_what_to_do(
    daemon_root, standin_env, started, policy, layout, says, fix
):
    """Each route by which a job could change what later jobs run with stops `serve` with one line that
    names the runtime, the folder its jobs can write, what lies there, and what to do."""
    root = daemon_root
    env = env_for(root, standin_env)
    home = env["HOME"]
    daemon = serve(root, env, policy.format(root=root, home=home))
    if layout == "in_home":
        (Path(home) / "policy.toml").write_text(daemon.policy.read_text())
        daemon.policy = Path(home) / "policy.toml"
    elif layout == "state_in_home":
        daemon.state_dir = Path(home) / ".local" / "state" / "hostpipe"
    elif layout == "bin_in_home":
        (Path(home) / "bin").mkdir()
        daemon.env["PATH"] = f"{home}/bin:" + daemon.env["PATH"]
    elif layout == "relative_path":
        daemon.env["PATH"] += ":"  # an empty entry: the working folder of whoever looks a program up
    elif layout == "executable_in_root":
        (root / "opt").mkdir()
        (root / "opt" / "apptainer").symlink_to(BINDING / "apptainer")
    line = refusal(daemon, started)
    assert line.startswith(f"hostpipe: invalid policy {daemon.policy}: runtimes.")
    assert says.format(root=root, home=home) in line
    assert fix in line


def test_serve_and_check_refuse_the_same_policy_with_the_same_words(daemon_root, standin_env, started):
    """`hostpipe check` gathers the same places and refuses the policy `serve` refuses, word for word."""
    env = env_for(daemon_root, standin_env)
    daemon = serve(daemon_root, env, '[runtimes.apptainer]\nbind_roots = ["~"]\n')
    daemon.state_dir = Path(env["HOME"]) / "state"
    line = refusal(daemon, started)
    checked = daemon.run("check", "apptainer run docker://x")
    assert checked.returncode == 3
    assert checked.stdout == "" and checked.stderr.strip() == line


# --- what a site may open, knowingly ------------------------------------------------------------------------


def test_site_that_keeps_everything_out_of_home_may_bind_it_read_write(daemon_root, standin_env, started):
    """With the policy, the state folder, PATH and every client configuration outside HOME, a site may give
    apptainer jobs the home folder read-write: serve starts and a job writes there."""
    env = env_for(daemon_root, standin_env)
    elsewhere = daemon_root / "config"
    daemon = serve(
        daemon_root,
        env,
        f"""
        [runtimes.apptainer]
        home_bind = "read-write"
        [runtimes.apptainer.env]
        APPTAINER_CONFIGDIR = "{elsewhere}/apptainer"
        SINGULARITY_CONFIGDIR = "{elsewhere}/singularity"
        DOCKER_CONFIG = "{elsewhere}/docker"
        """,
    )
    started.append(daemon.start())
    note = Path(env["HOME"]) / "note.txt"
    daemon.write(write_job(note, "written by a job"))
    (job,) = daemon.wait_records(1)
    assert job["state"] == "succeeded", Path(job["log"]).read_text()
    assert note.read_text() == "written by a job"
    assert Path(job["log"]).read_text().split()[:3] == ["apptainer", "exec", "--no-mount=cwd"]


def test_read_only_home_bind_lets_jobs_read_home_but_not_write_it(daemon_root, standin_env, started):
    """home_bind = "read-only" binds HOME read-only: the policy file there stays as it is."""
    env = env_for(daemon_root, standin_env)
    daemon = serve(daemon_root, env, '[runtimes.apptainer]\nhome_bind = "read-only"\n[runtimes.docker]\n')
    policy = Path(env["HOME"]) / "policy.toml"
    policy.write_text(daemon.policy.read_text())
    daemon.policy = policy
    started.append(daemon.start())
    daemon.write(write_job(policy, EVIL_POLICY))
    (job,) = daemon.wait_records(1)
    assert job["state"] == "failed"
    home = env["HOME"]
    assert Path(job["log"]).read_text().split()[:4] == [
        "apptainer",
        "exec",
        "--no-mount=home,cwd",
        f"--bind={home}:{home}:ro",
    ]
    assert "EVIL" not in policy.read_text() and "privileged" not in policy.read_text()


def test_reload_keeps_the_policy_in_force_when_the_new_one_would_open_the_state_folder(
    daemon_root, standin_env, started
):
    """On reload a policy whose jobs could write the state folder is refused like an invalid file, and the
    policy in force stays: what only the new one would allow is still refused."""
    env = env_for(daemon_root, standin_env)
    daemon = serve(daemon_root, env, "[runtimes.apptainer]\n")
    started.append(daemon.start())
    daemon.policy.write_text(f'[runtimes.apptainer]\nbind_roots = ["{daemon_root}"]\n')
    (event,) = wait_for(lambda: [e for e in daemon.events() if e["event"] == "policy_invalid"])
    assert event["kept"] == str(daemon.policy)
    assert any(f"apptainer jobs can write {daemon_root}" in p and "the state folder" in p for p in event["problems"])
    daemon.write(f"apptainer run -B {daemon_root}/x:/x docker://x\n")
    (record,) = daemon.wait_records(1)
    assert (record["state"], record["rule"]) == ("refused", "bind-outside-roots")
    assert not any(e["event"] == "policy_reloaded" for e in daemon.events())


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

EXAMPLE_LAYOUTS = [
    # (example, whether it serves with its policy and state folder in HOME, a line it runs)
    ("docker-host.toml", True, "docker run ubuntu"),
    ("apptainer-host.toml", True, "apptainer run docker://ubuntu"),
    ("bench-policy.toml", True, "docker run bench/sleep:1"),
    ("shifter-host.toml", False, "shifter --image=ubuntu --entrypoint"),
]


@pytest.mark.parametrize(("example", "in_home", "line"), EXAMPLE_LAYOUTS)
def test_each_example_serves_where_its_comments_say_and_nowhere_a_job_could_change_it(
    daemon_root, standin_env, started, example, in_home, line
):
    """With the policy and the state folder in HOME, the docker, apptainer and bench examples serve;
    shifter-host, whose jobs can write HOME, is refused there and serves once both are moved out."""
    env = {**env_for(daemon_root, standin_env), "PATH": f"{STANDINS}:{SYSTEM_PATH}"}  # the plain stand-ins
    home = Path(env["HOME"])
    daemon = serve(daemon_root, env, (EXAMPLES / example).read_text())
    config = home / ".config" / "hostpipe"
    config.mkdir(parents=True)
    (config / "policy.toml").write_text(daemon.policy.read_text())
    outside = daemon.policy, daemon.state_dir
    daemon.policy, daemon.state_dir = config / "policy.toml", home / ".local" / "state" / "hostpipe"
    if not in_home:
        message = refusal(daemon, started)
        assert f"shifter jobs can write {home}" in message and "the state folder" in message
        daemon.policy, daemon.state_dir = outside
    started.append(daemon.start())
    daemon.write(line + "\n")
    (record,) = daemon.wait_records(1)
    assert record["state"] == "succeeded", record
