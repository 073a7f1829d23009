"""A real `Host` over a temporary folder, for rule tests that must resolve paths and symlinks on disk."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TmpHost:
    """The daemon user's HOME is `home`; paths resolve through the real filesystem."""

    home: str

    def realpath(self, path: str) -> str:
        return os.path.realpath(path)


def build_host(base: Path) -> TmpHost:
    """A HOME with the files and links the tests name, next to a folder outside it.

    HOME/data/              a folder a site may open (with HOME/data/x inside)
    HOME/lolcow_latest.sif, HOME/ersap_v0.1.sif, HOME/process-exporter_pgid-go.sif, HOME/fw-agent_main.sif,
    HOME/img.tar            local images
    HOME/link_to_etc     -> /etc                  a symlink leading out of HOME
    HOME/link_to_data    -> HOME/data             a symlink staying inside
    HOME/deep_link       -> HOME/a/b/c            `deep_link/../../x` is inside by realpath, outside by clean
    HOME/img             a folder used as a shifter local image
    BASE/outside/        a folder next to HOME
    """
    home = base / "home"
    for folder in ("data/x", "a/b/c", "img"):
        (home / folder).mkdir(parents=True, exist_ok=True)
    (base / "outside").mkdir(exist_ok=True)
    for name in (
        "lolcow_latest.sif",
        "ersap_v0.1.sif",
        "process-exporter_pgid-go.sif",
        "fw-agent_main.sif",
        "img.tar",
    ):
        (home / name).touch()
    links = {"link_to_etc": Path("/etc"), "link_to_data": home / "data", "deep_link": home / "a" / "b" / "c"}
    for name, target in links.items():
        if not (home / name).is_symlink():
            (home / name).symlink_to(target)
    return TmpHost(home=str(home))
