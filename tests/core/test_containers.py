"""Container handles: how a docker or podman job's container is reached, by the id hostpipe obtained."""

from __future__ import annotations

import shlex

import pytest

from hostpipe.core.containers import ContainerHandle, container_handle, container_id, stop_command, with_cidfile
from hostpipe.core.runtimes.registry import GRAMMARS

CASES = [
    # (line, handle): a cidfile goes just before the image, whatever the line names its container.
    ("docker run --name ersap -d gurjyan/ersap:v0.4", ContainerHandle(insert_at=5, detached=True)),
    ("podman run --name=a --rm img", ContainerHandle(insert_at=4, removed_by_engine=True)),
    ("docker run -d --detach=false img", ContainerHandle(insert_at=4)),  # the last occurrence wins
    ("docker run -d --restart=always img", ContainerHandle(insert_at=4, detached=True, engine_owned=True)),
    ("podman run -d --restart no img", ContainerHandle(insert_at=5, detached=True)),
    ("docker run --rm img echo hi", ContainerHandle(insert_at=3, removed_by_engine=True)),
    ("docker run --rm -- img echo hi", ContainerHandle(insert_at=3, removed_by_engine=True)),  # before `--`
    ("docker -D run img", ContainerHandle(insert_at=3)),  # global options shift the place
    ("podman container run -it img sh -c 'x img'", ContainerHandle(insert_at=4)),  # args repeating the image
    ("apptainer run docker://x", None),  # its container is a process in the job's group
    ("shifter --image=x --entrypoint", None),
]


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_handle_for_each_kind_of_line(line, expected):
    """docker and podman run jobs get a handle; apptainer and shifter jobs need none."""
    argv = tuple(shlex.split(line))
    invocation = GRAMMARS[argv[0]].parse(argv[1:])
    handle = container_handle(argv[0], invocation, argv)
    assert handle == expected
    if handle is not None:
        added = with_cidfile(argv, handle, "/state/cid/7.cid")
        reread = GRAMMARS[argv[0]].parse(added[1:])
        assert reread.image == invocation.image and reread.args == invocation.args
        assert [o.value for o in reread.options if o.name == "--cidfile"] == ["/state/cid/7.cid"]


def test_a_followed_rm_container_is_removed_by_hostpipe_after_its_end_is_read():
    """`run -d --rm`: hostpipe adds --rm=false (the last occurrence wins) and removes the container itself."""
    argv = ("podman", "run", "-d", "--rm", "img", "sh")
    handle = container_handle("podman", GRAMMARS["podman"].parse(argv[1:]), argv)
    assert handle is not None and handle.followed and handle.defers_removal and handle.removed_by_hostpipe
    added = with_cidfile(argv, handle, "/s/cid/1.cid")
    assert added == ("podman", "run", "-d", "--rm", "--cidfile=/s/cid/1.cid", "--rm=false", "img", "sh")
    assert [o.value for o in GRAMMARS["podman"].parse(added[1:]).options if o.name == "--rm"] == ["true", "false"]


@pytest.mark.parametrize(
    ("line", "removed_by_hostpipe"),
    [
        ("docker run img", True),  # nobody else removes it
        ("docker run --rm img", False),  # the engine does, as the CLI waits for it
        ("docker run -d --rm img", True),  # deferred: hostpipe reads its end first
        ("docker run -d --restart=always img", False),  # the engine owns it
    ],
)
def test_who_removes_each_container(line, removed_by_hostpipe):
    """Every container a job created is removed once, by the engine or by hostpipe, unless the engine owns it."""
    argv = tuple(shlex.split(line))
    handle = container_handle("docker", GRAMMARS["docker"].parse(argv[1:]), argv)
    assert handle is not None and handle.removed_by_hostpipe is removed_by_hostpipe


def test_stop_command_rounds_the_grace_up():
    """`stop -t` takes whole seconds; a fractional grace never becomes a shorter one."""
    cid = "a" * 64
    assert stop_command("/usr/bin/podman", 2.5, cid) == ("/usr/bin/podman", "stop", "-t", "3", cid)


@pytest.mark.parametrize("name", ["--all", "-a", "tenant-b-database", "abc", "A" * 64, "a" * 63, "a" * 64 + "\n--all"])
def test_stop_command_takes_nothing_but_a_full_container_id(name):
    """A name, a short id or anything that could parse as an option never reaches `RUNTIME stop`."""
    with pytest.raises(ValueError, match="not a container id"):
        stop_command("/usr/bin/docker", 10, name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("f" * 64 + "\n", "f" * 64), ("", None), ("--all", None), ("f" * 64 + " --all", None), ("g" * 64, None)],
)
def test_container_id_is_read_only_from_a_whole_id(text, expected):
    """The cidfile counts only when it holds exactly one full lowercase hex id."""
    assert container_id(text) == expected
