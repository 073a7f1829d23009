"""Where a docker or podman job's container id is kept, and reading it back.

The executor (stopping a job) and reconciliation (stopping or adopting what a crashed daemon left) must agree
on both, so they live here once. The file is hostpipe's own, in the private state folder: it is read without
following links and only a full container id counts.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from hostpipe.core.containers import container_id


def cidfile_for(cid_dir: Path, job_id: int) -> Path:
    return cid_dir / f"{job_id}.cid"


def read_container_id(path: Path) -> str | None:
    """The id the CLI wrote, or None while it has not created the container (or wrote anything else)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return container_id(os.read(fd, 256).decode("ascii", errors="replace"))
    finally:
        os.close(fd)


def remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def remove_all_but(cid_dir: Path, keep: set[int]) -> None:
    """Remove the container-id files (and exit-code files) of every job but those in `keep`."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(cid_dir):
            stem, _, _ = entry.name.partition(".")
            if not (stem.isdigit() and int(stem) in keep):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
