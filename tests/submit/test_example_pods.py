"""The pod specs in examples/pods: each names the pod through the Downward API, and its command, run the way
vk-cmd runs it (bash -c, with the pod's env), hands its job to a real daemon and exits with the job's code."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Daemon

PODS = Path(__file__).parent.parent.parent / "examples" / "pods"
POLICY = """
kill_grace = "1s"

[runtimes.{runtime}]
"""
DOWNWARD = re.compile(
    r"- name: (POD_NAME|POD_NAMESPACE)\s+valueFrom:\s+fieldRef:\s+fieldPath: (metadata\.namespace|metadata\.name)\b"
)


def field(text: str, name: str) -> str:
    match = re.search(rf"^  {name}: (\S+)$", text, re.MULTILINE)
    assert match, f"no metadata.{name}"
    return match.group(1)


@pytest.mark.parametrize("spec", sorted(PODS.glob("*.yaml")), ids=lambda path: path.stem)
def test_each_example_pod_runs_its_job_through_the_published_client(
    spec: Path, make_daemon: Callable[..., Daemon], daemon_root: Path
) -> None:
    """A site's example pod: Downward-API POD_NAME and POD_NAMESPACE, the client by the daemon's path, --wait;
    its command exits 0 with the job's output and files the job under the pod."""
    text = spec.read_text()
    assert sorted(DOWNWARD.findall(text)) == [("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")]
    [command] = re.findall(r'command: \["(.*)"\]', text)
    assert "/hostpipe/bin/hostpipe-submit --wait" in command
    name, namespace = field(text, "name"), field(text, "namespace")
    runtime = command.split(" -- ", 1)[1].split()[0]
    daemon = make_daemon(POLICY.format(runtime=runtime), root=daemon_root)
    # The pod sees the pipe's folder as /root/hostpipe (docker host) or $HOME/hostpipe (apptainer, shifter).
    host_command = command.replace("/root/hostpipe", str(daemon.pipe.parent))
    env = {**daemon.env, "HOME": str(daemon_root), "POD_NAME": name, "POD_NAMESPACE": namespace}

    result = subprocess.run(
        ["bash", "-c", host_command], capture_output=True, text=True, env=env, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    [record] = daemon.ps()
    assert (record["pod"], record["state"]) == (f"{namespace}/{name}", "succeeded")
    assert record["argv"][0] in result.stdout  # the stand-in runtime prints its argv: the job's output
