"""Container handles: how a docker or podman job's container is reached when the job is stopped."""

from __future__ import annotations

import pytest

from hostpipe.core.containers import ContainerHandle, container_handle, stop_command, with_cidfile
from hostpipe.core.runtimes.registry import GRAMMARS

CASES = [
    # (argv, handle): the line's own --name or --cidfile wins; otherwise a cidfile goes just before the image.
    ("docker run --name ersap -d gurjyan/ersap:v0.4", ContainerHandle(name="ersap")),
    ("podman run --name=a --name=b img", ContainerHandle(name="b")),  # the last --name is the one used
    ("docker run --cidfile /data/c.id img", ContainerHandle(cidfile="/data/c.id")),
    ("docker run --rm img echo hi", ContainerHandle(insert_at=3)),
    ("docker run --rm -- img echo hi", ContainerHandle(insert_at=3)),  # before `--`, which must stay first
    ("docker -D run img", ContainerHandle(insert_at=3)),  # global options shift the place
    ("podman container run -it img sh -c 'x img'", ContainerHandle(insert_at=4)),  # args repeating the image
    ("apptainer run docker://x", None),  # its container is a process in the job's group
    ("shifter --image=x --entrypoint", None),
]


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_handle_for_each_kind_of_line(line, expected):
    """docker and podman run jobs get a handle; apptainer and shifter jobs need none."""
    import shlex

    argv = tuple(shlex.split(line))
    invocation = GRAMMARS[argv[0]].parse(argv[1:])
    handle = container_handle(argv[0], invocation, argv)
    assert handle == expected
    if handle is not None and handle.insert_at is not None:
        added = with_cidfile(argv, handle, "/state/cid/7.cid")
        assert GRAMMARS[argv[0]].parse(added[1:]).image == invocation.image
        assert "--cidfile=/state/cid/7.cid" in added


def test_named_container_keeps_argv_unchanged():
    """A line that names its container runs exactly as written."""
    argv = ("docker", "run", "--name", "x", "img")
    assert with_cidfile(argv, ContainerHandle(name="x"), "/p") == argv


def test_stop_command_rounds_the_grace_up():
    """`stop -t` takes whole seconds; a fractional grace never becomes a shorter one."""
    assert stop_command("/usr/bin/podman", 2.5, "abc") == ("/usr/bin/podman", "stop", "-t", "3", "abc")
