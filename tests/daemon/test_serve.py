"""A real `hostpipe serve` process, a real FIFO, stand-in runtimes: what pods and operators see."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import DATA, DEFAULT_POLICY, Daemon, process_group_alive, wait_for, write_line

TABLE_3 = [
    line
    for line in (DATA / "pipe-lines.txt").read_text().split("# Other plain runtime lines")[0].splitlines()
    if line and not line.startswith("#")
]


SITE_POLICIES = {
    "docker": "[runtimes.docker]\n",
    "apptainer": "[runtimes.apptainer]\n",
    "shifter": "[runtimes.shifter]\n",
}
"""One site per runtime, as JIRIAF ran them: shifter jobs can write the home folder, where the docker
client's configuration lies, so one daemon must not run both."""


def test_table_3_lines_run_unchanged(make_daemon, daemon_root):
    """The three lines JIRIAF sites used run as written, each recorded as succeeded with its output logged."""
    assert len(TABLE_3) == 3
    for line in TABLE_3:
        runtime = line.split()[0]
        daemon: Daemon = make_daemon(SITE_POLICIES[runtime], root=daemon_root / runtime)
        daemon.write(line + "\n")
        (record,) = daemon.wait_records(1)
        assert (record["state"], record["exit_code"], record["line"]) == ("succeeded", 0, line)
        ran = Path(record["log"]).read_text().split()
        # docker gets one word more, the --cidfile through which hostpipe can stop the container; apptainer
        # gets --no-mount=home,cwd after the subcommand, so that the job cannot write the daemon's HOME.
        added = {"docker": [w for w in ran if w.startswith("--cidfile=")], "apptainer": ["--no-mount=home,cwd"]}
        assert [w for w in ran if w not in added.get(runtime, [])] == line.split()
        assert len(added.get(runtime, [])) == (0 if runtime == "shifter" else 1)
        if runtime == "apptainer":
            assert ran[:3] == ["apptainer", "run", "--no-mount=home,cwd"]
        assert daemon.stop() == 0


def test_line_without_final_newline_is_refused_on_its_own(make_daemon):
    """`printf 'docker run x' > pipe` is cut off where the read emptied the pipe and refused, never run or joined."""
    daemon = make_daemon()
    daemon.write("docker run godlovedc/lolcow:latest")
    daemon.wait_records(1)
    daemon.write("docker run test/x\n")
    first, second = daemon.wait_records(2)
    assert (first["state"], first["rule"], first["line"]) == (
        "refused",
        "unterminated",
        "docker run godlovedc/lolcow:latest",
    )
    assert "newline" in first["reason"]
    assert (second["state"], second["line"]) == ("succeeded", "docker run test/x")


def test_many_concurrent_writers_lose_and_mix_nothing(make_daemon):
    """50 writers x 20 lines each give exactly 1000 records, one per line, none merged or split."""
    daemon = make_daemon()
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for j in range(20):
                write_line(daemon.pipe, f"HOSTPIPE_ID=w{w}-{j} docker run test/x\n")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    records = daemon.wait_records(1000, timeout=120)
    assert len(records) == 1000
    assert {r["client_id"] for r in records} == {f"w{w}-{j}" for w in range(50) for j in range(20)}
    assert {r["state"] for r in records} == {"succeeded"}


def test_writer_never_waits_for_running_jobs(make_daemon):
    """With 64 long jobs running, a pod's write still returns at once instead of waiting for a job to end."""
    daemon = make_daemon()
    for i in range(64):
        daemon.write(f"HOSTPIPE_ID=long{i} docker run test/x sleep 60\n")
    wait_for(lambda: len(daemon.ps("--state", "running")) == 64, timeout=30)
    slowest = 0.0
    for i in range(20):
        started = time.monotonic()
        daemon.write(f"HOSTPIPE_ID=quick{i} docker run test/x\n")
        slowest = max(slowest, time.monotonic() - started)
    # The old loop blocked writers for the whole length of the running job (60 s here).
    assert slowest < 1.0
    wait_for(lambda: len(daemon.ps("--state", "queued")) == 20, timeout=10)
    assert daemon.stop() == 0


REFUSALS = [
    # (line, rule): every refusal is a record with the rule that broke.
    ("ls -l .", "program"),
    ("docker run ubuntu ls > ~/out.txt", "redirection"),
    ("(setsid shifter --image=docker:jlabtsai/stress:p64 --entrypoint& echo $! > ~/pid.out)", "subshell"),
    ("docker run x && docker run y", "command-list"),
    ("docker run x | tee out", "pipeline"),
    ("docker run x &", "background"),
    ("docker run $(cat /etc/hostname)", "command-substitution"),
    ("export PROCESS_EXPORTER_PORT=1912", "env-assignment"),
    ("FOO=1 docker run x", "env-assignment"),
    ("docker pull x", "subcommand"),
    ("docker run --privileged x", "privileged"),
    ('{"argv": "docker run x"}', "bad-field"),
    ("HOSTPIPE_POD=Not_A_Pod docker run x", "bad-pod"),
    ("setsid docker run x", "program"),
]


def test_refuses_every_kind_of_bad_line_with_its_rule(make_daemon):
    """Each bad line becomes a refused record naming its rule; none of them runs anything."""
    # More refused lines than one pod may have recorded one by one in a minute by default (refused_per_pod).
    daemon = make_daemon(f"refused_per_pod = {len(REFUSALS)}\n{DEFAULT_POLICY}")
    for line, _ in REFUSALS:
        daemon.write(line + "\n")
    records = daemon.wait_records(len(REFUSALS))
    assert [(r["line"], r["state"], r["rule"]) for r in records] == [(line, "refused", rule) for line, rule in REFUSALS]
    assert all(r["reason"] and r["log"] is None and r["pid"] is None for r in records)


def test_refuses_undecodable_and_overlong_lines_as_records(make_daemon):
    """A NUL byte, invalid UTF-8 and a line longer than PIPE_BUF each end as one refused record."""
    daemon = make_daemon()
    daemon.write(b"docker run x\x00y\n")
    daemon.write(b"docker run \xff\xfe\n")
    daemon.write(b"docker run " + b"a" * 5000 + b"\n")
    daemon.write(b"docker run after-the-long-one\n")
    records = daemon.wait_records(4)
    assert [r["rule"] for r in records[:3]] == ["nul-byte", "not-utf8", "line-too-long"]
    assert records[3]["state"] == "succeeded"


def test_refused_line_keeps_the_pod_that_wrote_it(make_daemon):
    """A refusal is filed under the pod the line named, so `ps --pod` shows a pod its own refusals."""
    daemon = make_daemon()
    daemon.write("HOSTPIPE_POD=jiriaf/lolcow docker run x > out\n")
    (record,) = daemon.wait_records(1)
    assert (record["pod"], record["state"], record["rule"]) == ("jiriaf/lolcow", "refused", "redirection")
    assert daemon.ps("--pod", "jiriaf/lolcow") == [record]


def test_job_gets_a_clean_environment(make_daemon):
    """A job sees PATH, HOME, USER, LANG, what the policy passes and its own marker, never the daemon's others."""
    daemon = make_daemon(
        """
        [runtimes.docker]
        pass_env = ["SITE_TOKEN"]
        env = { FIXED = "yes" }
        """,
        start=False,
    )
    daemon.env.update(SITE_TOKEN="abc", DOCKER_HOST="tcp://elsewhere:2375", SECRET="no")
    daemon.start()
    daemon.write("docker run test/x env\n")
    (record,) = daemon.wait_records(1)
    names = {line.split("=", 1)[0] for line in Path(record["log"]).read_text().splitlines()[1:]}
    assert names - {"PWD", "SHLVL", "_"} == {"PATH", "HOME", "USER", "LANG", "SITE_TOKEN", "FIXED", "HOSTPIPE_JOB"}


def test_exit_status_and_output_are_recorded(make_daemon):
    """A failing job is `failed` with its exit code, and its stdout and stderr land in its log."""
    daemon = make_daemon()
    daemon.write("""docker run test/x sh -c 'echo out; echo err >&2; exit 3'\n""")
    (record,) = daemon.wait_records(1)
    assert (record["state"], record["exit_code"], record["signal"]) == ("failed", 3, None)
    log = Path(record["log"]).read_text()
    assert "out\n" in log and "err\n" in log
    assert Path(record["log"]).relative_to(daemon.state_dir / "logs") == Path(f"_/_/{record['id']}.log")


def test_logs_are_grouped_by_pod(make_daemon):
    """A named pod's logs live under logs/<namespace>/<name>/ and `logs --pod` prints them all."""
    daemon = make_daemon()
    daemon.write("HOSTPIPE_POD=ns1/pod-a docker run test/x echo first\n")
    daemon.write("HOSTPIPE_POD=ns1/pod-a docker run test/x echo second\n")
    records = daemon.wait_records(2)
    assert all(Path(r["log"]).parent == daemon.state_dir / "logs" / "ns1" / "pod-a" for r in records)
    # Every log line about a job says whose it is.
    about_jobs = [e for e in daemon.events() if e["event"] in ("job_started", "job_finished")]
    assert sorted((e["job"], e["pod"]) for e in about_jobs) == sorted(
        (r["id"], "ns1/pod-a") for r in records for _ in range(2)
    )
    out = daemon.run("logs", "--pod", "ns1/pod-a", check=True).stdout
    assert out.index("first") < out.index("second")


def test_timeout_stops_the_whole_process_group(make_daemon):
    """A job past its timeout gets SIGTERM on its group and is recorded as timed_out; nothing of it is left."""
    daemon = make_daemon()
    daemon.write("HOSTPIPE_TIMEOUT=0.5 docker run test/x sh -c 'sleep 60 & sleep 60'\n")
    (record,) = daemon.wait_records(1, timeout=15)
    assert record["state"] == "timed_out"
    assert record["signal"] == signal.SIGTERM
    # The background sleep was SIGKILLed with the group; init reaps it a moment later.
    wait_for(lambda: not process_group_alive(record["pid"]), timeout=5)


def test_job_ignoring_sigterm_is_killed_after_the_grace(make_daemon):
    """kill_grace after SIGTERM, a job that traps it gets SIGKILL; the record says so."""
    daemon = make_daemon()
    daemon.write("""HOSTPIPE_TIMEOUT=0.3 docker run test/x sh -c 'trap "" TERM; sleep 60'\n""")
    (record,) = daemon.wait_records(1, timeout=15)
    assert (record["state"], record["signal"]) == ("timed_out", signal.SIGKILL)
    assert record["ended_at"] - record["started_at"] >= 1.0
    wait_for(lambda: not process_group_alive(record["pid"]), timeout=5)


def test_request_timeout_is_capped_by_the_policy(make_daemon):
    """A pod cannot ask for more time than max_timeout; the record notes the cap."""
    daemon = make_daemon(
        """
        max_timeout = "0.5s"
        kill_grace = "1s"
        [runtimes.docker]
        """
    )
    daemon.write("HOSTPIPE_TIMEOUT=1h docker run test/x sleep 60\n")
    (record,) = daemon.wait_records(1, timeout=15)
    assert (record["state"], record["timeout"]) == ("timed_out", 0.5)


def test_cancel_by_job_and_by_pod(make_daemon):
    """`hostpipe cancel JOB` and `cancel --pod` stop running and queued jobs and record them as cancelled."""
    daemon = make_daemon(
        """
        max_concurrent = 2
        kill_grace = "1s"
        [runtimes.docker]
        """
    )
    daemon.write("HOSTPIPE_POD=ns/a docker run test/x sleep 60\n")
    daemon.write("HOSTPIPE_POD=ns/b docker run test/x sleep 60\n")
    daemon.write("HOSTPIPE_POD=ns/b docker run test/x sleep 60\n")
    wait_for(lambda: len(daemon.ps("--state", "running")) == 2 and len(daemon.ps("--state", "queued")) == 1)
    result = daemon.run("cancel", "--pod", "ns/b")
    assert result.returncode == 0, result.stderr
    first = daemon.ps("--pod", "ns/a")[0]
    result = daemon.run("cancel", str(first["id"]))
    assert result.returncode == 0, result.stderr
    records = daemon.wait_records(3)
    assert [r["state"] for r in records] == ["cancelled"] * 3
    assert "queued" in records[2]["reason"]
    wait_for(lambda: all(not process_group_alive(r["pid"]) for r in records if r["pid"]), timeout=5)
    again = daemon.run("cancel", str(first["id"]))
    assert again.returncode == 1 and "nothing to cancel" in again.stderr


def test_full_queue_refuses_with_a_reason(make_daemon):
    """Past max_concurrent running and max_queued waiting, a line is refused as queue-full, not dropped."""
    daemon = make_daemon(
        """
        max_concurrent = 1
        max_queued = 1
        [runtimes.docker]
        """
    )
    for _ in range(3):
        daemon.write("docker run test/x sleep 60\n")
    records = daemon.wait_records(3, terminal=False)
    assert [r["state"] for r in records] == ["running", "queued", "refused"]
    assert records[2]["rule"] == "queue-full"


def test_shutdown_stops_jobs_and_records_every_final_state(make_daemon):
    """SIGTERM to the daemon: it stops its jobs with the grace, records them, leaves no process, exits 0."""
    daemon = make_daemon(
        """
        max_concurrent = 2
        kill_grace = "1s"
        [runtimes.docker]
        """
    )
    daemon.write("docker run test/x sleep 60\n")
    daemon.write("""docker run test/x sh -c 'trap "" TERM; sleep 60'\n""")
    daemon.write("docker run test/x sleep 60\n")
    wait_for(lambda: len(daemon.ps("--state", "running")) == 2)
    assert daemon.stop(signal.SIGTERM) == 0
    records = daemon.ps()
    assert [r["state"] for r in records] == ["cancelled"] * 3
    assert [r["signal"] for r in records[:2]] == [signal.SIGTERM, signal.SIGKILL]
    wait_for(lambda: all(not process_group_alive(r["pid"]) for r in records[:2]), timeout=5)


def test_restart_repairs_jobs_a_killed_daemon_left_running(make_daemon):
    """After the daemon is SIGKILLed, its holder starts a new one, which stops the orphaned job (interrupted)."""
    daemon = make_daemon()
    daemon.write("docker run test/x sleep 60\n")
    (running,) = wait_for(lambda: daemon.ps("--state", "running"))
    old = daemon.daemon_pid()
    daemon.kill_daemon()
    assert daemon.daemon_pid() != old
    (record,) = wait_for(lambda: [r for r in daemon.ps() if r["state"] != "running"])
    assert record["state"] == "interrupted"
    assert "stopped" in record["reason"]
    wait_for(lambda: not process_group_alive(running["pid"]), timeout=5)
    wait_for(lambda: any(e["event"] == "job_repaired" for e in daemon.events()), timeout=5)
    # The holder said so too, in the same JSON lines (its logging is set up once its first daemon started).
    died = wait_for(lambda: [e for e in daemon.events() if e["event"] == "daemon_died"], timeout=5)
    assert died[0]["level"] == "error" and "SIGKILL" in died[0]["status"]


def test_reuses_its_own_fifo_after_a_restart(make_daemon):
    """A second start finds the FIFO it made and serves it."""
    daemon = make_daemon()
    inode = daemon.pipe.stat().st_ino
    assert daemon.stop() == 0
    daemon.start()
    assert daemon.pipe.stat().st_ino == inode
    daemon.write("docker run test/x\n")
    assert daemon.wait_records(1)[0]["state"] == "succeeded"


@pytest.mark.parametrize("kind", ["symlink", "regular file", "foreign fifo"])
def test_refuses_an_unsafe_pipe_path(make_daemon, tmp_path, kind):
    """A symlink, a regular file or another user's FIFO at the pipe path stops serve with one clear line."""
    daemon = make_daemon(start=False)
    daemon.pipe.parent.mkdir(parents=True)
    target = tmp_path / "target"
    target.write_text("precious")
    if kind == "symlink":
        daemon.pipe.symlink_to(target)
    elif kind == "regular file":
        daemon.pipe.write_text("x")
    else:
        if os.geteuid() != 0:
            pytest.skip("making another user's FIFO needs root")
        os.mkfifo(daemon.pipe)
        os.chown(daemon.pipe, 65534, 65534)
    with pytest.raises(AssertionError, match="exited 3") as failure:
        daemon.start()
    message = str(failure.value)
    assert str(daemon.pipe) in message
    assert {"symlink": "symlink", "regular file": "regular file", "foreign fifo": "uid 65534"}[kind] in message
    assert target.read_text() == "precious"


def test_invalid_policy_stops_serve_naming_file_field_and_reason(make_daemon):
    """A policy that does not validate never serves; the error names the file, the field and why."""
    daemon = make_daemon("max_concurrent = 0\n[runtimes.docker]\nimages = 'x'\n", start=False)
    with pytest.raises(AssertionError) as failure:
        daemon.start()
    message = str(failure.value)
    assert str(daemon.policy) in message
    assert "max_concurrent" in message and "runtimes.docker.images" in message
    assert not daemon.pipe.exists()
    # The store's writer starts before the policy is read (to start up meanwhile) but opens no records until the
    # daemon asks, and goes once the daemon has gone.
    assert not (daemon.state_dir / "hostpipe.sqlite3").exists()
    wait_for(lambda: not _writers_of(daemon.state_dir), timeout=10)


def _writers_of(state_dir: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"hostpipe.daemon.writer" in argv and str(state_dir / "hostpipe.sqlite3").encode() in argv:
                found.append(int(entry.name))
    return found


def test_a_second_daemon_on_the_same_pipe_or_state_is_refused(make_daemon, tmp_path):
    """Two readers would split the lines and two daemons one state: the second start says so and exits 3."""
    first: Daemon = make_daemon()
    same_pipe = Daemon(first.pipe, tmp_path / "other-state", first.policy, first.env, stderr_path=tmp_path / "2.log")
    with pytest.raises(AssertionError, match="already serving"):
        same_pipe.start()
    same_state = Daemon(
        tmp_path / "p2" / "vk-cmd", first.state_dir, first.policy, first.env, stderr_path=tmp_path / "3.log"
    )
    with pytest.raises(AssertionError, match="using the state folder"):
        same_state.start()
    first.write("docker run test/x\n")
    assert first.wait_records(1)[0]["state"] == "succeeded"


def test_max_concurrent_option_overrides_the_policy(make_daemon):
    """--max-concurrent caps running jobs below the policy's max_concurrent; the rest wait queued."""
    daemon: Daemon = make_daemon(start=False)
    daemon.start("--max-concurrent", "1")
    daemon.write("docker run test/x sleep 60\n")
    daemon.write("docker run test/x sleep 60\n")
    records = daemon.wait_records(2, terminal=False)
    wait_for(lambda: [r["state"] for r in daemon.ps()] == ["running", "queued"])
    assert records[0]["id"] < records[1]["id"]


def test_sigint_stops_the_daemon_like_sigterm(make_daemon):
    """Ctrl-C in a terminal: the same staged shutdown, every job recorded, exit status 0."""
    daemon: Daemon = make_daemon()
    daemon.write("docker run test/x sleep 60\n")
    wait_for(lambda: daemon.ps("--state", "running"))
    assert daemon.stop(signal.SIGINT) == 0
    (record,) = daemon.ps()
    assert (record["state"], record["signal"]) == ("cancelled", signal.SIGTERM)


def test_commands_find_the_daemon_through_environment_variables(make_daemon):
    """HOSTPIPE_PIPE, HOSTPIPE_STATE_DIR and HOSTPIPE_POLICY point every command at one daemon."""
    from tests.conftest import hostpipe

    daemon: Daemon = make_daemon()
    env = {
        **daemon.env,
        "HOSTPIPE_PIPE": str(daemon.pipe),
        "HOSTPIPE_STATE_DIR": str(daemon.state_dir),
        "HOSTPIPE_POLICY": str(daemon.policy),
    }
    daemon.write("HOSTPIPE_POD=ns/env docker run test/x sleep 60\n")
    wait_for(lambda: daemon.ps("--state", "running"))
    assert hostpipe("cancel", "--pod", "ns/env", env=env).returncode == 0
    records = json.loads(hostpipe("ps", "--json", env=env).stdout)
    assert [r["pod"] for r in records] == ["ns/env"]
    assert "allowed" in hostpipe("check", "docker run x", env=env).stdout


SLOW_ENGINE = """#!/bin/sh
# A docker whose `stop` takes 20 s (an engine under load); `run` writes a container id and runs the command.
case "$1" in
  stop) sleep 20; exit 0 ;;
esac
shift
for word in "$@"; do
  case $word in --cidfile=*) printf '%064d' 7 > "${word#--cidfile=}" ;; esac
done
while [ $# -gt 0 ]; do case $1 in -*) shift ;; *) shift; break ;; esac; done
exec "$@"
"""


def test_a_slow_engine_stop_never_delays_another_pods_start(make_daemon, tmp_path):
    """While `docker stop` of a cancelled job hangs for 20 s, another pod's line still starts within a second."""
    slow = tmp_path / "bin" / "docker"
    slow.parent.mkdir()
    slow.write_text(SLOW_ENGINE)
    slow.chmod(0o755)
    daemon = make_daemon(f'kill_grace = "30s"\n[runtimes.docker]\nexecutable = "{slow}"\n')
    for i in range(4):
        daemon.write(f"HOSTPIPE_ID=victim{i} docker run test/x sleep 300\n")
    running = wait_for(lambda: len(daemon.ps("--state", "running")) == 4 and daemon.ps("--state", "running"))
    for job in running:
        assert daemon.run("cancel", str(job["id"])).returncode == 0
    time.sleep(0.5)
    started = time.monotonic()
    daemon.write("HOSTPIPE_ID=next docker run test/x true\n")
    wait_for(lambda: [r for r in daemon.ps("--id", "next") if r["state"] == "succeeded"], timeout=10)
    assert time.monotonic() - started < 3


def test_a_daemon_whose_holder_is_killed_stops_and_frees_the_state_folder(make_daemon):
    """SIGKILL of the holder (`hostpipe serve`) leaves no daemon serving on behind everyone's back: it logs
    `holder_gone`, stops its jobs as for SIGTERM, and the next `hostpipe serve` on the same folders starts."""
    daemon: Daemon = make_daemon()
    daemon.write("docker run test/x sleep 60\n")
    (running,) = wait_for(lambda: daemon.ps("--state", "running"))
    pid = daemon.daemon_pid()
    assert daemon.process is not None
    os.kill(daemon.process.pid, signal.SIGKILL)
    daemon.process.wait(10)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], 20)
    assert any(e["event"] == "holder_gone" for e in daemon.events())
    (record,) = daemon.ps()
    assert record["state"] == "cancelled", record
    wait_for(lambda: not process_group_alive(running["pid"]), timeout=5)

    daemon.start()
    daemon.write("docker run test/x true\n")
    wait_for(lambda: [r for r in daemon.ps() if r["id"] != record["id"] and r["state"] == "succeeded"], 20)
