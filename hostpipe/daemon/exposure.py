"""Refusing a policy whose jobs could change what later jobs run with (see `hostpipe.core.writable`).

The core decides from paths; this module finds them on this host: the daemon user's home folders (HOME and
the passwd entry's), PATH, the working folders, where hostpipe's own code lies, and where each of them
leads once symlinks are followed. `guard` is applied to every policy the daemon loads, at start and on each
reload, and by `hostpipe check`, so both say the same.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import hostpipe
from hostpipe.core import writable
from hostpipe.core.policy import LoadedPolicy, job_env
from hostpipe.daemon.policyfile import BUILTIN, PolicyError


def _place(path: str) -> writable.Place:
    absolute = os.path.abspath(path)
    try:
        resolved = os.path.realpath(absolute)
    except (OSError, ValueError):
        resolved = absolute
    return writable.Place(absolute, resolved)


def _kept(spot: writable.Spot) -> writable.Kept:
    return writable.Kept(spot.what, _place(spot.path), spot.fix or "")


def _homes(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The daemon user's home folders: HOME, then the passwd entry's (apptainer and ssh use that one)."""
    try:
        passwd_home = pwd.getpwuid(os.geteuid()).pw_dir
    except KeyError:
        passwd_home = ""
    home = environ.get("HOME") or passwd_home
    return tuple(dict.fromkeys(os.path.abspath(h) for h in (home, passwd_home) if h))


def find_exposures(
    loaded: LoadedPolicy, *, policy: Path | None, state_dir: Path, environ: Mapping[str, str]
) -> tuple[writable.Exposure, ...]:
    """Every place later jobs run with that the jobs of an enabled, installed runtime can write."""
    homes = _homes(environ)
    own_code = os.path.dirname(os.path.abspath(hostpipe.__file__))
    entries = writable.path_entries(environ.get("PATH", os.defpath), homes[0], os.getcwd())
    kept = [
        _kept(spot)
        for spot in writable.daemon_kept(
            policy=str(policy) if policy is not None else None,
            state_dir=str(state_dir),
            path_entries=entries,
            own_code=own_code,
        )
    ]
    openings: list[writable.Opening] = []
    for name, runtime in loaded.policy.runtimes.items():
        executable = loaded.executables.get(name)
        if executable is None:
            continue
        env = job_env(runtime, environ)
        kept.append(_kept(writable.executable_kept(name, executable)))
        kept += [_kept(spot) for spot in writable.client_files(name, runtime, env, homes, executable)]
        openings += [
            writable.Opening(name, _place(spot.path), spot.what, spot.fix)
            for spot in writable.job_openings(name, runtime, homes)
        ]
    return writable.exposures(kept, openings)


def guard(loaded: LoadedPolicy, *, policy: Path | None, state_dir: Path, environ: Mapping[str, str]) -> LoadedPolicy:
    """`loaded` when no job can change what later jobs run with.

    A policy file that lets one is refused with a `PolicyError`, one problem per place. The built-in policy
    comes back with the runtimes whose jobs could in `withheld`, so that the daemon starts and refuses their
    lines with the reason.
    """
    found = find_exposures(loaded, policy=policy, state_dir=state_dir, environ=environ)
    if not found:
        return loaded
    if loaded.source == BUILTIN:
        return replace(loaded, withheld=writable.withheld(found))
    raise PolicyError(loaded.source, writable.problems(found))
