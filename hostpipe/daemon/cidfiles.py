"""Where a docker or podman job's container id is kept, and reading it back to stop the container.

The executor (stopping a job) and reconciliation (stopping what a crashed daemon left) must agree on both, so
they live here once.
"""

from __future__ import annotations

from pathlib import Path

from hostpipe.core.containers import ContainerHandle


def cidfile_for(handle: ContainerHandle, job_id: int, cid_dir: Path, cwd: str) -> Path | None:
    """The file the CLI writes the container id into: the line's own --cidfile, or the one hostpipe adds."""
    if handle.cidfile is not None:
        return Path(cwd, handle.cidfile)
    if handle.adds_cidfile:
        return cid_dir / f"{job_id}.cid"
    return None


def container_ref(handle: ContainerHandle, cidfile: Path | None) -> str | None:
    """The name or id to give `RUNTIME stop`; None while the CLI has not created the container yet."""
    if handle.name is not None:
        return handle.name
    if cidfile is None:
        return None
    try:
        return cidfile.read_text().strip() or None
    except OSError:
        return None
