"""`hostpipe check`: the daemon's decision for a line, printed without running anything.

Every test runs the real CLI in a subprocess with HOME and the state folder in a folder of its own (so `~`
and the default policy location are known) and the stand-in runtimes first on PATH (so the policy resolves
docker, podman, apptainer, singularity and shifter to absolute executables when it loads). That folder lies
outside /tmp and PATH holds only system folders besides the stand-ins, because apptainer and shifter jobs
can write /tmp (and shifter's the home folder) and `check`, like the daemon, refuses a policy whose jobs
could change what later jobs run with. The sample lines of tests/data/pipe-lines.txt are decided under the
built-in policy and under their site's example policy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RUN_ROOT, SYSTEM_PATH

TESTS = Path(__file__).resolve().parents[1]
STANDINS = TESTS / "standins"
"""The stand-ins conftest.py puts first on PATH: each prints its argv, then runs the command."""
EXAMPLES = TESTS.parent / "examples"
SAMPLE_LINES = TESTS / "data" / "pipe-lines.txt"

BUILTIN = "built-in"
EVERY = "every policy"

SITE_POLICIES: dict[str, Path] = {
    "docker-host": EXAMPLES / "docker-host.toml",
    "apptainer-host": EXAMPLES / "apptainer-host.toml",
    "shifter-host": EXAMPLES / "shifter-host.toml",
    "bench-policy": EXAMPLES / "bench-policy.toml",
    "podman-host": EXAMPLES / "podman-host.toml",
}


@dataclass(frozen=True)
class Expect:
    outcome: str
    rule: str | None = None
    argument: str | None = None
    """The argument exactly as written; `{home}` stands for the daemon user's HOME."""


ALLOWED = Expect("allowed")


def refused(rule: str, argument: str | None = None) -> Expect:
    return Expect("refused", rule, argument)


@dataclass(frozen=True)
class Sample:
    line: str
    builtin: Expect
    site: str
    """The SITE_POLICIES key of the line's site, or EVERY for a line every policy refuses alike."""
    at_site: Expect


SAMPLES: tuple[Sample, ...] = (
    # Table 3: one line per site, unchanged.
    Sample("docker run godlovedc/lolcow:latest", ALLOWED, "docker-host", ALLOWED),
    Sample("apptainer run docker://sylabsio/lolcow:latest", ALLOWED, "apptainer-host", ALLOWED),
    # shifter jobs can write the home folder, which holds the built-in policy's own file location: the
    # built-in policy leaves shifter out.
    Sample(
        "shifter --image=godlovedc/lolcow:latest --entrypoint",
        refused("runtime-withheld", "shifter"),
        "shifter-host",
        ALLOWED,
    ),
    # Plain runtime lines.
    Sample("docker run ubuntu ls", ALLOWED, "docker-host", ALLOWED),
    Sample("docker run stress:v1.0", ALLOWED, "docker-host", ALLOWED),
    Sample(
        "apptainer exec lolcow_latest.sif cowsay moo",
        refused("image-outside-roots", "lolcow_latest.sif"),
        "apptainer-host",
        ALLOWED,
    ),
    Sample(
        "apptainer run ~/ersap_v0.1.sif -- /ersap/run-pipeline.sh",
        refused("image-outside-roots", "{home}/ersap_v0.1.sif"),
        "apptainer-host",
        ALLOWED,
    ),
    Sample(
        "shifter --image=docker:jlabtsai/stress:p1 --entrypoint",
        refused("runtime-withheld", "shifter"),
        "shifter-host",
        ALLOWED,
    ),
    Sample(
        "shifter --image=gurjyan/ersap:v0.2 -- /ersap/run-pipeline.sh",
        refused("runtime-withheld", "shifter"),
        "shifter-host",
        ALLOWED,
    ),
    # Runtime lines with host access.
    Sample(
        "docker run -d --rm --name vd-ersap --network=host -e ERSAP_USER_DATA=/data "
        "--entrypoint=/ersap/run-pipeline.sh gurjyan/ersap:v0.4",
        refused("host-network", "--network=host"),
        "docker-host",
        ALLOWED,
    ),
    # No example opens the host's /proc: through it one container reads another's environment and writes
    # into its root filesystem, `:ro` or not. The process exporter's lines are refused at every site.
    Sample(
        "docker run -d --rm --net=host -v /proc:/host_proc jlabtsai/process-exporter:v1.0",
        refused("host-network", "--net=host"),
        "docker-host",
        refused("bind-outside-roots", "-v /proc:/host_proc"),
    ),
    Sample(
        "apptainer run --bind /proc:/host_proc ~/process-exporter_pgid-go.sif",
        refused("bind-outside-roots", "--bind /proc:/host_proc"),
        "apptainer-host",
        refused("bind-outside-roots", "--bind /proc:/host_proc"),
    ),
    Sample(
        "apptainer exec --env SLURM_CONF=$HOME/slurm.conf "
        "--bind /run/munge/munge.socket.2:/run/munge/munge.socket.2 fw-agent_main.sif bash",
        refused("bind-outside-roots", "--bind /run/munge/munge.socket.2:/run/munge/munge.socket.2"),
        "apptainer-host",
        ALLOWED,
    ),
    Sample(
        "shifter --image=jlabtsai/process-exporter:v1.0 -V /proc:/host_proc --entrypoint",
        refused("runtime-withheld", "shifter"),
        "shifter-host",
        refused("bind-outside-roots", "-V /proc:/host_proc"),
    ),
    Sample(
        "podman run --name ersap -d --rm --network=host -e ERSAP_HOME=/ersap "
        "--entrypoint=/ersap/run.sh gurjyan/ersap:v0.4",
        refused("host-network", "--network=host"),
        "podman-host",
        ALLOWED,
    ),
    # Shell-chained lines: the grammar refuses them before any policy is consulted.
    Sample("docker run ubuntu ls > ~/out.txt", refused("redirection", ">"), EVERY, refused("redirection", ">")),
    Sample(
        "apptainer exec lolcow_latest.sif cowsay moo > $HOME/out.txt && ls -l $HOME/out.txt",
        refused("redirection", ">"),
        EVERY,
        refused("redirection", ">"),
    ),
    Sample(
        "(setsid shifter --image=docker:jlabtsai/stress:p64 --entrypoint& echo $! > ~/pid.out)",
        refused("subshell", "("),
        EVERY,
        refused("subshell", "("),
    ),
    Sample(
        "(setsid shifter --image=docker:gurjyan/ersap:v0.4 -- /bin/bash /ersap/run-pipeline-8.sh & "
        "echo $! > $HOME/sid.out) && (ssh -NfR 2221:localhost:2221 jiriaf2301)",
        refused("subshell", "("),
        EVERY,
        refused("subshell", "("),
    ),
    Sample(
        "export PROCESS_EXPORTER_PORT=1912 && setsid shifter --image=jlabtsai/process-exporter:v1.0 "
        "-V /proc:/host_proc --entrypoint &",
        refused("env-assignment", "export"),
        EVERY,
        refused("env-assignment", "export"),
    ),
    Sample("ls -l .", refused("program", "ls"), EVERY, refused("program", "ls")),
)

ALLOWED_KEYS = {"line", "allowed", "pod", "runtime", "image", "argv", "timeout"}
REFUSED_KEYS = {"line", "allowed", "pod", "rule", "argument", "reason"}


def env_for(home: Path, path: str | None = None) -> dict[str, str]:
    """The CLI's environment: HOME in the test's folder, the state folder beside it (outside HOME, which
    shifter jobs can write), stand-ins first on a PATH of system folders, no other HOSTPIPE_* or XDG_*."""
    return {
        "PATH": path if path is not None else f"{STANDINS}:{SYSTEM_PATH}",
        "HOME": str(home),
        "HOSTPIPE_STATE_DIR": str(home.parent / "state"),
        "USER": os.environ.get("USER", "root"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(EXAMPLES.parent)])),
    }


def run_check(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`hostpipe check ARGS`; stdin is always given, so a check that reads it by mistake cannot hang."""
    return subprocess.run(
        [sys.executable, "-m", "hostpipe", "check", *args],
        check=False,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def decisions(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.stderr == "", result.stderr
    entries = json.loads(result.stdout)
    assert isinstance(entries, list)
    return entries


def observed(entry: dict[str, Any]) -> Expect:
    if entry["allowed"]:
        return ALLOWED
    return Expect("refused", entry["rule"], entry["argument"])


def with_home(expect: Expect, home: Path) -> Expect:
    if expect.argument is None:
        return expect
    return Expect(expect.outcome, expect.rule, expect.argument.format(home=home))


@pytest.fixture
def home(daemon_root: Path) -> Path:
    folder = daemon_root / "home"
    folder.mkdir()
    return folder


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return env_for(home)


@dataclass(frozen=True)
class SampleRun:
    home: Path
    by_policy: dict[str, dict[str, dict[str, Any]]]
    """Policy name -> line -> the JSON decision for that line."""


@pytest.fixture(scope="module")
def sample_root() -> Iterator[Path]:
    """A folder outside /tmp for the module's sample run (see `daemon_root` in conftest.py)."""
    RUN_ROOT.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="hp", dir=RUN_ROOT))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def sample_run(sample_root: Path) -> SampleRun:
    """Every sample line decided under the built-in policy and each site policy, one `check --file` each."""
    root = sample_root
    home = root / "home"
    home.mkdir()
    env = env_for(home)
    by_policy: dict[str, dict[str, dict[str, Any]]] = {}
    for name, path in {BUILTIN: None, **SITE_POLICIES}.items():
        policy = [] if name == BUILTIN else ["--policy", str(path)]
        result = run_check(env, "--json", "--skip-comments", "--file", str(SAMPLE_LINES), *policy)
        assert result.returncode == 1, result.stderr  # every policy refuses some sample line
        by_policy[name] = {entry["line"]: entry for entry in decisions(result)}
    return SampleRun(home, by_policy)


def sample_file_lines() -> list[str]:
    lines = SAMPLE_LINES.read_text().splitlines()
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


# --- one line, text output, exit status -----------------------------------------------------------------


def test_allowed_line_prints_the_runtime_and_image_and_exits_0(env):
    """An allowed line is echoed with the runtime and image it would run, and the exit status is 0."""
    result = run_check(env, "docker run godlovedc/lolcow:latest")
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout
        == "allowed  docker run godlovedc/lolcow:latest\n  runtime docker, image godlovedc/lolcow:latest\n"
    )


def test_allowed_apptainer_line_shows_the_words_hostpipe_adds(env):
    """An apptainer line runs with --no-mount=home,cwd after its subcommand; check prints it and the argv."""
    line = "apptainer exec docker://ubuntu ls"
    text = run_check(env, line)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[-1] == "  hostpipe adds: --no-mount=home,cwd"
    (entry,) = decisions(run_check(env, "--json", line))
    assert entry["argv"] == [str(STANDINS / "apptainer"), "exec", "--no-mount=home,cwd", "docker://ubuntu", "ls"]


@pytest.mark.parametrize(
    ("line", "rule", "argument"),
    [
        ("docker run --privileged ubuntu", "privileged", "--privileged"),
        ("docker run --cap-add SYS_ADMIN ubuntu", "capabilities", "--cap-add SYS_ADMIN"),
        ("podman run -v=/etc:/host_etc ubuntu", "bind-outside-roots", "-v=/etc:/host_etc"),
        ("apptainer exec --bind /etc:/x docker://ubuntu ls", "bind-outside-roots", "--bind /etc:/x"),
        ("singularity run -f docker://ubuntu", "fakeroot", "-f"),
        ("shifter --image=ubuntu --module=gpu", "runtime-withheld", "shifter"),
        ("docker exec box ls", "subcommand", "exec"),
        ("nohup docker run ubuntu", "program", "nohup"),
    ],
)
def test_refused_line_prints_the_rule_and_the_argument_as_written_and_exits_1(env, line, rule, argument):
    """A refusal names the rule and the exact words that broke it, then the reason; the exit status is 1."""
    result = run_check(env, line)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [f"refused  {line}", f"  rule: {rule}", f"  argument: {argument}"]
    assert len(lines) == 4 and lines[3].startswith("  reason: ") and len(lines[3]) > len("  reason: ")


def test_grammar_refusal_names_the_rule_and_quotes_the_shell_operator(env):
    """A line refused before any policy is read names the grammar's rule; its reason quotes the operator."""
    result = run_check(env, "docker run ubuntu ls > ~/out.txt")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[:2] == ["refused  docker run ubuntu ls > ~/out.txt", "  rule: redirection"]
    assert lines[-1].startswith("  reason: '>' redirects")


def test_one_refused_line_among_allowed_ones_makes_the_exit_status_1(env):
    """Every line is decided and printed in order; one refusal is enough for exit status 1."""
    result = run_check(env, "docker run ubuntu", "docker run --privileged ubuntu", "podman run ubuntu")
    assert result.returncode == 1
    heads = [line.split("  ")[0] for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert heads == ["allowed", "refused", "allowed"]


def test_runtime_missing_from_path_is_refused_as_not_installed(home, tmp_path):
    """Executables are resolved on PATH when the policy loads; a runtime found nowhere is refused."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = run_check(env_for(home, path=str(empty)), "--json", "docker run ubuntu")
    assert result.returncode == 1
    (entry,) = decisions(result)
    assert (entry["rule"], entry["argument"]) == ("not-installed", "docker")


def test_runtime_named_by_its_resolved_path_is_that_runtime_and_other_paths_are_not(env, tmp_path):
    """A line may name the executable the policy resolved; any other path is not an allowed program."""
    other = tmp_path / "bin" / "docker"
    other.parent.mkdir()
    other.symlink_to(STANDINS / "docker")
    result = run_check(env, "--json", f"{STANDINS}/docker run ubuntu", f"{other} run ubuntu")
    resolved, elsewhere = decisions(result)
    assert resolved["allowed"] and resolved["runtime"] == "docker"
    assert (elsewhere["allowed"], elsewhere["rule"], elsewhere["argument"]) == (False, "program", str(other))


# --- --file, stdin, --json --------------------------------------------------------------------------------

LINES_WITH_COMMENTS = """\
# a comment
docker run ubuntu

    # an indented comment
apptainer run docker://ubuntu
shifter --image=ubuntu --entrypoint   # a trailing comment belongs to the line
"""
CHECKED = [
    "docker run ubuntu",
    "apptainer run docker://ubuntu",
    "shifter --image=ubuntu --entrypoint   # a trailing comment belongs to the line",
]
CHECKED_ALLOWED = [True, True, False]
"""The built-in policy leaves shifter out: its jobs can write the home folder (see the sample table)."""


def test_file_is_checked_line_by_line_skipping_comments_and_blank_lines(env, tmp_path):
    """--file FILE --skip-comments decides each line in order; blank lines and lines starting with # are left out."""
    listing = tmp_path / "lines.txt"
    listing.write_text(LINES_WITH_COMMENTS)
    result = run_check(env, "--json", "--skip-comments", "--file", str(listing))
    assert result.returncode == 1
    assert [(e["line"], e["allowed"]) for e in decisions(result)] == list(zip(CHECKED, CHECKED_ALLOWED, strict=True))


def test_file_blank_and_comment_lines_are_refused_as_the_daemon_records_them(env, tmp_path):
    """Without --skip-comments every line of the file is one, as in the pipe: blank and # lines are empty-line."""
    listing = tmp_path / "lines.txt"
    listing.write_text(LINES_WITH_COMMENTS)
    entries = decisions(run_check(env, "--json", "--file", str(listing)))
    assert len(entries) == 6
    assert [e["rule"] for e in entries if not e["allowed"]][:3] == ["empty-line"] * 3
    assert [e["line"] for e in entries if e["allowed"] or e["rule"] != "empty-line"] == CHECKED


@pytest.mark.parametrize("args", [("--file", "-"), ()], ids=["file-dash", "no-argument"])
def test_lines_are_read_from_stdin(env, args):
    """`--file -`, and no LINE and no --file, read the lines from stdin the same way."""
    result = run_check(
        env, "--json", "--skip-comments", *args, stdin=LINES_WITH_COMMENTS + "docker run --privileged x\n"
    )
    assert result.returncode == 1
    entries = decisions(result)
    assert [e["line"] for e in entries] == [*CHECKED, "docker run --privileged x"]
    assert [e["allowed"] for e in entries] == [*CHECKED_ALLOWED, False]


def test_missing_line_file_is_a_usage_error_with_one_line(env, tmp_path):
    """A --file that cannot be read stops the command with one line on stderr and exit status 2 (usage)."""
    result = run_check(env, "--file", str(tmp_path / "absent.txt"))
    assert result.returncode == 2
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1 and "absent.txt" in result.stderr


def test_json_shape_of_allowed_and_refused_entries_is_pinned(env):
    """--json prints one array; allowed and refused entries have exactly these keys and values."""
    result = run_check(
        env,
        "--json",
        "--policy",
        str(EXAMPLES / "docker-host.toml"),
        "HOSTPIPE_POD=jiriaf/ersap HOSTPIPE_TIMEOUT=100h docker run -d --net=host gurjyan/ersap:v0.4",
        "docker run ubuntu",
        "HOSTPIPE_POD=jiriaf/x docker run -v /etc:/host_etc ubuntu",
        "HOSTPIPE_POD=jiriaf/y docker run ubuntu && ls",
    )
    assert result.returncode == 1
    capped, default, argv_refused, line_refused = decisions(result)
    for entry in (capped, default):
        assert set(entry) == ALLOWED_KEYS
    for entry in (argv_refused, line_refused):
        assert set(entry) == REFUSED_KEYS
    assert capped == {
        "line": "HOSTPIPE_POD=jiriaf/ersap HOSTPIPE_TIMEOUT=100h docker run -d --net=host gurjyan/ersap:v0.4",
        "allowed": True,
        "pod": "jiriaf/ersap",
        "runtime": "docker",
        "image": "gurjyan/ersap:v0.4",
        "argv": [str(STANDINS / "docker"), "run", "-d", "--net=host", "gurjyan/ersap:v0.4"],
        "timeout": 72 * 3600,  # the site's max_timeout caps the line's 100h
    }
    assert (default["pod"], default["timeout"]) == (None, 24 * 3600)  # the site's default timeout
    assert (argv_refused["pod"], argv_refused["rule"], argv_refused["argument"]) == (
        "jiriaf/x",
        "bind-outside-roots",
        "-v /etc:/host_etc",
    )
    assert "/etc" in argv_refused["reason"] and "bind_roots" in argv_refused["reason"]
    assert (line_refused["pod"], line_refused["rule"]) == ("jiriaf/y", "command-list")
    assert line_refused["argument"] == "&&"


# --- which policy ------------------------------------------------------------------------------------------


def test_policy_option_and_variable_pick_the_file(env):
    """--policy and HOSTPIPE_POLICY name the policy; without either, the built-in one allows apptainer."""
    line = "apptainer run docker://ubuntu"
    bench = str(EXAMPLES / "bench-policy.toml")
    assert run_check(env, line).returncode == 0
    by_option = run_check(env, "--json", "--policy", bench, line)
    by_variable = run_check({**env, "HOSTPIPE_POLICY": bench}, "--json", line)
    for result in (by_option, by_variable):
        assert result.returncode == 1
        (entry,) = decisions(result)
        assert (entry["rule"], entry["argument"]) == ("program", "apptainer")


def test_policy_in_the_config_folder_is_used_when_none_is_named(env, home):
    """~/.config/hostpipe/policy.toml is the policy when it exists, the built-in one when it does not."""
    line = "apptainer run docker://ubuntu"
    assert run_check(env, line).returncode == 0
    config = home / ".config" / "hostpipe"
    config.mkdir(parents=True)
    (config / "policy.toml").write_text((EXAMPLES / "bench-policy.toml").read_text())
    (entry,) = decisions(run_check(env, "--json", line))
    assert entry["rule"] == "program"


INVALID_POLICIES = [
    ("allow-ports", '[runtimes.docker]\nallow_ports = "maybe"\n', "runtimes.docker.allow_ports", "boolean"),
    ("typo", "max_concurent = 4\n", "max_concurent", "Extra inputs are not permitted"),
    ("zero", "max_concurrent = 0\n", "max_concurrent", "greater than or equal to 1"),
    ("duration", 'timeout = "soon"\n', "timeout", "duration 'soon' is not understood"),
    ("kind", "[runtimes.rkt]\n", "runtimes.rkt.kind", "is not one of apptainer, docker, podman"),
    ("subcommand", '[runtimes.docker]\nsubcommands=["exec"]\n', "runtimes.docker.subcommands", "exec cannot"),
    ("timeouts", 'timeout = "2h"\nmax_timeout = "1h"\n', "timeout", "longer than max_timeout"),
    ("toml", "max_concurrent = [\n", "(file)", "not valid TOML"),
]


@pytest.mark.parametrize("case", INVALID_POLICIES, ids=[case[0] for case in INVALID_POLICIES])
def test_invalid_policy_exits_3_with_one_line_naming_file_field_and_reason(env, tmp_path, case):
    """An invalid policy decides nothing: one line on stderr names the file, the field and the reason."""
    _, text, field, reason = case
    policy = tmp_path / "policy.toml"
    policy.write_text(text)
    result = run_check(env, "--policy", str(policy), "docker run ubuntu")
    assert result.returncode == 3
    assert result.stdout == ""
    (message,) = result.stderr.splitlines()
    assert message.startswith(f"hostpipe: invalid policy {policy}: ")
    assert f"{field}: " in message and reason in message


def test_named_policy_that_does_not_exist_exits_3(env, tmp_path):
    """A policy named with --policy must exist; falling back to the built-in one would widen what runs."""
    absent = tmp_path / "absent.toml"
    result = run_check(env, "--policy", str(absent), "docker run ubuntu")
    assert result.returncode == 3
    assert result.stdout == ""
    (message,) = result.stderr.splitlines()
    assert message.startswith(f"hostpipe: invalid policy {absent}: ") and "No such file" in message


# --- the sample lines under the built-in policy and their site's policy ------------------------------------


def test_sample_table_covers_every_line_of_the_sample_file():
    """Each line of tests/data/pipe-lines.txt has exactly one expected outcome here, and nothing else does."""
    table = [sample.line for sample in SAMPLES]
    assert len(set(table)) == len(table)
    assert sorted(table) == sorted(sample_file_lines())


def test_table_3_lines_come_first_and_are_allowed_under_their_site_policies(sample_run):
    """The three Table 3 lines head the sample file and run under their site's policy; the built-in policy
    runs the docker and apptainer ones and leaves shifter out, saying that its jobs could write HOME."""
    table_3 = SAMPLES[:3]
    assert [sample.line for sample in table_3] == sample_file_lines()[:3]
    for sample in table_3:
        assert sample_run.by_policy[sample.site][sample.line]["allowed"] is True
    builtin = [sample_run.by_policy[BUILTIN][sample.line] for sample in table_3]
    assert [entry["allowed"] for entry in builtin] == [True, True, False]
    reason = builtin[2]["reason"]
    assert f"shifter jobs can write {sample_run.home}" in reason and "--policy /etc/hostpipe/policy.toml" in reason


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.line[:50])
def test_sample_line_under_the_builtin_policy(sample_run, sample):
    """The built-in policy decides each sample line as the table says, with the rule and the argument."""
    entry = sample_run.by_policy[BUILTIN][sample.line]
    assert observed(entry) == with_home(sample.builtin, sample_run.home)


@pytest.mark.parametrize("sample", [s for s in SAMPLES if s.site != EVERY], ids=lambda s: s.line[:50])
def test_sample_line_under_its_site_policy(sample_run, sample):
    """The site's example policy decides each of its sample lines as the table says."""
    entry = sample_run.by_policy[sample.site][sample.line]
    assert observed(entry) == with_home(sample.at_site, sample_run.home)


@pytest.mark.parametrize("sample", [s for s in SAMPLES if s.site == EVERY], ids=lambda s: s.line[:50])
def test_shell_chained_sample_line_is_refused_alike_under_every_policy(sample_run, sample):
    """A shell-chained line (or a program no policy names) gets the same refusal under every policy."""
    assert sample.builtin == sample.at_site
    for name, by_line in sample_run.by_policy.items():
        assert observed(by_line[sample.line]) == sample.at_site, name


# --- each example policy, exercised -------------------------------------------------------------------------

EXAMPLE_CASES: dict[str, list[tuple[str, Expect]]] = {
    "docker-host": [
        ("docker run -d --rm --net=host gurjyan/ersap:v0.4", ALLOWED),
        # The host's /proc is open in no spelling, read-only included.
        (
            "docker run -d --rm --net=host -v /proc:/host_proc:ro jlabtsai/process-exporter:v1.0",
            refused("bind-outside-roots", "-v /proc:/host_proc:ro"),
        ),
        (
            "docker run -d --rm --net=host -v /proc:/host_proc jlabtsai/process-exporter:v1.0",
            refused("bind-outside-roots", "-v /proc:/host_proc"),
        ),
        (
            "docker run --mount type=bind,src=/proc,dst=/host_proc,readonly ubuntu ls /host_proc",
            refused("bind-outside-roots", "--mount type=bind,src=/proc,dst=/host_proc,readonly"),
        ),
        ("docker run -v /proc/sys:/s ubuntu", refused("bind-outside-roots", "-v /proc/sys:/s")),
        ("docker run -v ~/data:/data ubuntu ls /data", refused("bind-outside-roots", "-v {home}/data:/data")),
        ("docker run -v /etc:/host_etc ubuntu", refused("bind-outside-roots", "-v /etc:/host_etc")),
        ("docker run ubuntuevil/miner", refused("image", "ubuntuevil/miner")),
        ("docker run --privileged ubuntu", refused("privileged", "--privileged")),
        ("docker run -p 8080:80 ubuntu", refused("ports", "-p 8080:80")),
        ("docker run alpine", refused("image", "alpine")),
        ("podman run --network=host ubuntu", refused("program", "podman")),  # "for docker only"
    ],
    "apptainer-host": [
        ("apptainer exec lolcow_latest.sif cowsay moo", ALLOWED),
        (
            "apptainer exec --env SLURM_CONF=$HOME/slurm.conf "
            "--bind /run/munge/munge.socket.2:/run/munge/munge.socket.2 fw-agent_main.sif bash",
            ALLOWED,
        ),
        (
            "apptainer run --bind /proc:/host_proc:ro ~/process-exporter_pgid-go.sif",
            refused("bind-outside-roots", "--bind /proc:/host_proc:ro"),
        ),
        # HOME is open read-only: to bind what lies in it and to run the images there, never to write.
        ("apptainer exec --bind ~/data:/data:ro docker://ubuntu ls /data", ALLOWED),
        (
            "apptainer exec --bind ~/data:/data docker://ubuntu ls /data",
            refused("bind-read-write", "--bind {home}/data:/data"),
        ),
        ("apptainer run --writable lolcow_latest.sif", refused("writable", "--writable")),
        ("apptainer run --bind /etc:/e docker://ubuntu", refused("bind-outside-roots", "--bind /etc:/e")),
        ("apptainer run /srv/images/lolcow.sif", refused("image-outside-roots", "/srv/images/lolcow.sif")),
        ("apptainer run --fakeroot docker://ubuntu", refused("fakeroot", "--fakeroot")),
        ("apptainer exec --nv docker://ubuntu nvidia-smi", refused("devices", "--nv")),
        ("singularity run docker://ubuntu", refused("program", "singularity")),
    ],
    "shifter-host": [
        ("shifter --image=gurjyan/ersap:v0.2 -- /ersap/run-pipeline.sh", ALLOWED),
        (
            "shifter --image=jlabtsai/process-exporter:v1.0 -V /proc:/host_proc:ro --entrypoint",
            refused("bind-outside-roots", "-V /proc:/host_proc:ro"),
        ),
        (
            "shifter --image=ubuntu -V /x:/cache:perNodeCache=size=100T --entrypoint",
            refused("per-node-cache", "-V /x:/cache:perNodeCache=size=100T"),
        ),
        (
            "shifter --image=ubuntu -V /global/cfs:/data --entrypoint",
            refused("bind-outside-roots", "-V /global/cfs:/data"),
        ),
        ("shifter --image=x -V /proc/self/root:/h", refused("bind-outside-roots", "-V /proc/self/root:/h")),
        ("shifter --image=local:/ --entrypoint", refused("image-outside-roots", "--image=local:/")),
        ("shifter --image=ubuntu --module=gpu", refused("module-not-allowed", "--module=gpu")),
        ("shifter --entrypoint", refused("missing-image", "shifter")),
    ],
    "bench-policy": [
        ("docker run bench/sleep:1 sleep 1", ALLOWED),
        ("docker run ubuntu", refused("image", "ubuntu")),
        ("docker run --net=host bench/sleep:1", refused("host-network", "--net=host")),
        ("apptainer run docker://bench/sleep:1", refused("program", "apptainer")),
    ],
}


@pytest.mark.parametrize("example", sorted(EXAMPLE_CASES))
def test_example_policy_loads_and_decides_as_its_comment_says(env, home, example):
    """Each example policy loads, allows the lines its site needs and refuses the rest with the rule."""
    policy = SITE_POLICIES[example]
    assert policy is not None
    cases = EXAMPLE_CASES[example]
    result = run_check(env, "--json", "--policy", str(policy), *(line for line, _ in cases))
    assert result.returncode == 1
    entries = decisions(result)
    assert [entry["line"] for entry in entries] == [line for line, _ in cases]
    assert [observed(entry) for entry in entries] == [with_home(expect, home) for _, expect in cases]


def test_exporter_line_runs_only_where_a_site_adds_proc_itself_and_then_only_read_only(env, tmp_path):
    """No example opens /proc; a site that adds it to read_only_roots gets the exporter's `:ro` line only."""
    line = "docker run -d --rm --net=host -v /proc:/host_proc:ro jlabtsai/process-exporter:v1.0"
    shipped = run_check(env, "--json", "--policy", str(EXAMPLES / "docker-host.toml"), line)
    (entry,) = decisions(shipped)
    assert (entry["rule"], entry["argument"]) == ("bind-outside-roots", "-v /proc:/host_proc:ro")
    site = tmp_path / "exporter-site.toml"
    site.write_text((EXAMPLES / "docker-host.toml").read_text() + 'read_only_roots = ["/proc"]\n')
    result = run_check(env, "--json", "--policy", str(site), line, line.replace(":ro", ""))
    read_only, read_write = decisions(result)
    assert read_only["allowed"] is True
    assert (read_write["rule"], read_write["argument"]) == ("bind-read-write", "-v /proc:/host_proc")


def test_local_image_is_judged_by_where_it_resolves_not_whether_it_exists(env, home, tmp_path):
    """A relative .sif is under HOME whether or not it exists; a symlink out of the bind roots is refused."""
    (home / "present.sif").write_bytes(b"")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "real.sif").write_bytes(b"")
    (home / "escape.sif").symlink_to(outside / "real.sif")
    lines = ["apptainer run absent.sif", "apptainer run present.sif", "apptainer run escape.sif"]
    result = run_check(env, "--json", "--policy", str(EXAMPLES / "apptainer-host.toml"), *lines)
    assert [observed(entry) for entry in decisions(result)] == [
        ALLOWED,
        ALLOWED,
        refused("image-outside-roots", "escape.sif"),
    ]


# --- relaxing -----------------------------------------------------------------------------------------------

RELAXED_POLICY = """\
[runtimes.docker]
allow_options = ["--privileged"]
allow_capabilities = ["SYS_PTRACE"]
allow_ports = true

[runtimes.apptainer]
allow_options = ["--fakeroot"]
allow_devices = true
"""
RELAXED_SHIFTER = """\
[runtimes.shifter]
modules = ["gpu", "mpich"]
"""
"""shifter in a policy of its own: its jobs can write the home folder, which holds docker's configuration."""
RELAXED_CASES: list[tuple[str, Expect]] = [
    ("docker run --privileged=true ubuntu", ALLOWED),
    ("docker run --cap-add=SYS_PTRACE ubuntu", ALLOWED),
    ("docker run --cap-add=SYS_ADMIN ubuntu", refused("capabilities", "--cap-add=SYS_ADMIN")),
    ("docker run -p 8080:80 ubuntu", ALLOWED),
    ("apptainer run -f docker://ubuntu", ALLOWED),
    ("apptainer exec --nv docker://ubuntu nvidia-smi", ALLOWED),
    ("shifter --image=ubuntu --module=gpu,mpich", ALLOWED),
    ("shifter --image=ubuntu --module=cvmfs", refused("module-not-allowed", "--module=cvmfs")),
]


def test_relaxations_allow_what_they_name_in_any_spelling_and_nothing_more(env, home):
    """allow_options takes canonical names and covers every spelling; each knob opens only its own door."""
    # Beside HOME, not under /tmp: apptainer and shifter jobs can write /tmp, and a policy there is refused.
    policy = home.parent / "relaxed.toml"
    policy.write_text(RELAXED_POLICY)
    shifter = home.parent / "relaxed-shifter.toml"
    shifter.write_text(RELAXED_SHIFTER)
    lines = [line for line, _ in RELAXED_CASES]
    builtin = decisions(run_check(env, "--json", *lines))
    assert [entry["allowed"] for entry in builtin] == [False] * len(lines)
    relaxed = [
        *decisions(run_check(env, "--json", "--policy", str(policy), *lines[:-2])),
        *decisions(run_check(env, "--json", "--policy", str(shifter), *lines[-2:])),
    ]
    assert [observed(entry) for entry in relaxed] == [expect for _, expect in RELAXED_CASES]


def test_lines_and_a_file_together_are_a_usage_error(env, tmp_path):
    """LINE arguments and --file at once would leave one of them unchecked: exit 2 instead."""
    listed = tmp_path / "lines.txt"
    listed.write_text("docker run --privileged x\n")
    result = run_check(env, "docker run x", "--file", str(listed))
    assert result.returncode == 2 and "not both" in result.stderr


def test_a_file_with_nothing_to_check_is_a_usage_error(env, tmp_path):
    """A file of only comments and blank lines checks nothing, which is not a pass: exit 2."""
    listed = tmp_path / "lines.txt"
    listed.write_text("# nothing here\n\n")
    result = run_check(env, "--skip-comments", "--file", str(listed))
    assert result.returncode == 2 and "no lines" in result.stderr
