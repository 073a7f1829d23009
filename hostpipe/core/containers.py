"""How to reach the container a `docker run` or `podman run` job starts, so that stopping the job stops it.

The job's process group holds only the runtime's CLI; the container lives under the engine (conmon, the API
service, dockerd). Signalling the CLI is not enough when the container's PID 1 ignores SIGTERM, as a PID 1
without a handler does. So each such job gets a handle at admission: the line's own `--name`, or its own
`--cidfile`, or else a `--cidfile` option that hostpipe adds just before the image, and stopping the job
runs `RUNTIME stop` on it. Apptainer, singularity and shifter need none: their containers are processes in
the job's group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hostpipe.core.runtimes.base import Invocation

ENGINE_KINDS = frozenset({"docker", "podman"})


@dataclass(frozen=True)
class ContainerHandle:
    name: str | None = None
    """The container's name, from the line's --name."""
    cidfile: str | None = None
    """A file the CLI writes the container's id into, from the line's --cidfile."""
    insert_at: int | None = None
    """Where in argv an added `--cidfile=PATH` goes (just before the image), when the line names neither."""

    @property
    def adds_cidfile(self) -> bool:
        """hostpipe adds the cidfile, so it is hostpipe's to remove when the job is over."""
        return self.insert_at is not None


def _last(invocation: Invocation, option: str) -> str | None:
    values = [o.value for o in invocation.options if o.name == option and o.value]
    return values[-1] if values else None


def container_handle(kind: str, invocation: Invocation, argv: tuple[str, ...]) -> ContainerHandle | None:
    """The handle for a run job of an engine-backed runtime, or None when there is no container to reach."""
    if kind not in ENGINE_KINDS or invocation.image is None:
        return None
    name = _last(invocation, "--name")
    if name is not None:
        return ContainerHandle(name=name)
    cidfile = _last(invocation, "--cidfile")
    if cidfile is not None:
        return ContainerHandle(cidfile=cidfile)
    # The image is the word right before the container's own arguments, so its place is known from the end.
    index = len(argv) - len(invocation.args) - 1
    if index < 1 or argv[index] != invocation.image:
        return None
    if argv[index - 1] == "--":
        index -= 1
    return ContainerHandle(insert_at=index)


def with_cidfile(argv: tuple[str, ...], handle: ContainerHandle, path: str) -> tuple[str, ...]:
    """argv with `--cidfile=PATH` added where the handle says; unchanged when the line names its container."""
    if not handle.adds_cidfile:
        return argv
    return (*argv[: handle.insert_at], f"--cidfile={path}", *argv[handle.insert_at :])


def stop_command(executable: str, grace: float, container: str) -> tuple[str, ...]:
    """`RUNTIME stop -t SECONDS CONTAINER`: SIGTERM to the container, SIGKILL after the grace."""
    return (executable, "stop", "-t", str(max(0, math.ceil(grace))), container)
