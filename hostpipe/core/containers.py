"""How hostpipe reaches the container a `docker run` or `podman run` job creates, and only that container.

The job's process group holds only the runtime's CLI; the container lives under the engine (conmon, the API
service, dockerd). Signalling the CLI is not enough when the container's PID 1 ignores SIGTERM, and a detached
container (`run -d`) outlives its CLI altogether. So every such job gets a handle at admission: a
`--cidfile=STATE/cid/JOB.cid` option that hostpipe adds just before the image, into which the CLI writes the
id of the container it created. Stopping the job runs `RUNTIME stop` on that id, never on a name the line
chose: a pod-chosen name can be another tenant's container, or a word the CLI reads as an option
(`--name=--all`). A line's own `--cidfile` is refused by the policy, so the file is always hostpipe's.
Apptainer, singularity and shifter need none of this: their containers are processes in the job's group.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from hostpipe.core.runtimes.base import Invocation

ENGINE_KINDS = frozenset({"docker", "podman"})

CONTAINER_ID = re.compile(r"[0-9a-f]{64}")
"""A full container id as docker and podman write it to a cidfile: 64 lowercase hex digits, never an option."""


@dataclass(frozen=True)
class ContainerHandle:
    insert_at: int
    """Where in argv the added `--cidfile=PATH` goes: just before the image (or the `--` before it)."""
    detached: bool = False
    """The line starts the container with `-d`/`--detach`: the CLI returns once it runs."""
    removed_by_engine: bool = False
    """The line asks the engine to remove the container when it exits (`--rm`)."""
    engine_owned: bool = False
    """A restart policy other than `no` (which only a site that allows it lets through) gives the container to
    the engine: hostpipe neither follows nor stops nor removes it once its CLI has returned."""
    kept: bool = False
    """The site's policy keeps containers once their jobs ended (keep_containers); otherwise hostpipe removes
    the ones the engine does not remove by itself."""

    @property
    def followed(self) -> bool:
        """hostpipe follows the container to its end after the CLI returned (`run -d`)."""
        return self.detached and not self.engine_owned

    @property
    def defers_removal(self) -> bool:
        """A followed `--rm` container: the engine would remove it, and its last output and exit code with it,
        the moment it exits, racing hostpipe's `wait` and `logs -f`. hostpipe adds `--rm=false` and removes the
        container itself once its end is recorded, as the line asked."""
        return self.followed and self.removed_by_engine

    @property
    def removed_by_hostpipe(self) -> bool:
        """hostpipe removes the container once its job has ended."""
        return self.defers_removal or (not self.removed_by_engine and not self.kept and not self.engine_owned)


def _flag(invocation: Invocation, name: str) -> bool:
    """A boolean option's final value: the last occurrence wins, as pflag reads it."""
    values = [o.value for o in invocation.options if o.name == name]
    return bool(values) and values[-1] != "false"


def _restarts(invocation: Invocation) -> bool:
    values = [o.value or "" for o in invocation.options if o.name == "--restart"]
    return bool(values) and values[-1].strip().lower() not in ("", "no")


def container_handle(kind: str, invocation: Invocation, argv: tuple[str, ...]) -> ContainerHandle | None:
    """The handle for a run job of an engine-backed runtime, or None when there is no container to reach."""
    if kind not in ENGINE_KINDS or invocation.image is None:
        return None
    # The image is the word right before the container's own arguments, so its place is known from the end.
    index = len(argv) - len(invocation.args) - 1
    if index < 1 or argv[index] != invocation.image:
        return None
    if argv[index - 1] == "--":
        index -= 1
    return ContainerHandle(
        insert_at=index,
        detached=_flag(invocation, "--detach"),
        removed_by_engine=_flag(invocation, "--rm"),
        engine_owned=_restarts(invocation),
    )


def with_cidfile(argv: tuple[str, ...], handle: ContainerHandle, path: str) -> tuple[str, ...]:
    """argv with `--cidfile=PATH` (and `--rm=false` where removal is deferred) added where the handle says."""
    added = (f"--cidfile={path}", "--rm=false") if handle.defers_removal else (f"--cidfile={path}",)
    return (*argv[: handle.insert_at], *added, *argv[handle.insert_at :])


def container_id(text: str) -> str | None:
    """The container id in a cidfile's text, or None when it does not hold exactly one full id."""
    value = text.strip()
    return value if CONTAINER_ID.fullmatch(value) else None


def stop_command(executable: str, grace: float, container: str) -> tuple[str, ...]:
    """`RUNTIME stop -t SECONDS ID`: SIGTERM to the container, SIGKILL after the grace.

    Raises ValueError unless `container` is a full id, so nothing else can ever reach the engine here.
    """
    if not CONTAINER_ID.fullmatch(container):
        raise ValueError(f"{container!r} is not a container id")
    return (executable, "stop", "-t", str(max(0, math.ceil(grace))), container)
