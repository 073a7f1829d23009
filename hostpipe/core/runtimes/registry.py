"""The grammars a policy can name, by kind."""

from __future__ import annotations

from hostpipe.core.runtimes import apptainer, docker, podman, shifter
from hostpipe.core.runtimes.base import Grammar

GRAMMARS: dict[str, Grammar] = {
    g.kind: g for g in (docker.GRAMMAR, podman.GRAMMAR, apptainer.GRAMMAR, apptainer.SINGULARITY, shifter.GRAMMAR)
}
