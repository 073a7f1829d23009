"""Whether a host path named in an argv lies under the folders a site opened to its pods, and for what.

Binds, volumes, overlays and local images all name host paths; `ArgumentRules.bind_roots` lists the
folders they may come from read-write, `ArgumentRules.read_only_roots` those they may come from only when
the runtime mounts or reads them read-only. A runtime may resolve a path in one of two ways: the kernel
follows symlinks and `..` as it walks (what `Host.realpath` reports), while Go's `filepath.Clean` first drops
`..` by text and only then lets the kernel follow symlinks. A path is accepted only when both readings land
under a root, so neither a symlink nor a `..` can step outside one. It is read-write only when both land
under a bind root: a read-only root adds folders, it never narrows a bind root. Relative paths are relative
to the job's working directory, which is the daemon user's HOME.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hostpipe.core.runtimes.base import ArgumentRules, ArgvRefused, Host

READ_WRITE_RULE = "bind-read-write"
"""The rule refusing a host path under a read-only root that the runtime would mount or use read-write."""

Access = Literal["read-write", "read-only"]

_HOME_SPELLINGS = ("~", "${HOME}", "$HOME")


def expand_root(root: str, home: str) -> str | None:
    """`root` with a leading `~`, `$HOME` or `${HOME}` replaced by `home`; None when it is not absolute then.

    A root that is not absolute after expansion covers nothing, rather than something that depends on where
    the daemon happens to run.
    """
    for spelling in _HOME_SPELLINGS:
        if root == spelling or root.startswith(spelling + "/"):
            root = home + root[len(spelling) :]
            break
    if not root.startswith("/"):
        return None
    return root


def _absolute(path: str, home: str) -> str:
    if not path.startswith("/"):
        path = home.rstrip("/") + "/" + path
    # Linux reads any run of leading slashes as one; posixpath keeps exactly two, which would then never
    # compare equal to a root written with one.
    return "/" + path.lstrip("/")


def _clean(path: str) -> str:
    """An absolute path with `.`, `..` and repeated slashes dropped by text alone, as Go's filepath.Clean does."""
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/" + "/".join(parts)


def _resolve(path: str, host: Host) -> str | None:
    try:
        resolved = host.realpath(path)
    except (OSError, ValueError):
        return None
    if not resolved.startswith("/"):
        return None
    return "/" + resolved.lstrip("/")


def _resolved(written: tuple[str, ...], host: Host) -> tuple[str, ...]:
    roots: list[str] = []
    for root in written:
        expanded = expand_root(root, host.home)
        if expanded is None or "\0" in expanded:
            continue
        resolved = _resolve(_absolute(expanded, host.home), host)
        if resolved is not None:
            roots.append(resolved)
    return tuple(roots)


def inside(path: str, root: str) -> bool:
    """True when `path` is `root` or lies under it (both absolute and clean)."""
    return root in ("/", path) or path.startswith(root.rstrip("/") + "/")


def host_path_under_roots(path: str, roots: tuple[str, ...], host: Host) -> bool:
    """True when `path` (absolute, or relative to the daemon user's HOME) resolves under one of `roots`.

    Both the kernel's reading and the clean-then-resolve reading must land under a root. An empty path, or
    one holding a NUL byte, is never under a root.
    """
    if not path or "\0" in path or not roots:
        return False
    absolute = _absolute(path, host.home)
    for candidate in (absolute, _clean(absolute)):
        resolved = _resolve(candidate, host)
        if resolved is None or not any(inside(resolved, root) for root in roots):
            return False
    return True


@dataclass(frozen=True)
class HostRoots:
    """A runtime's roots, expanded and resolved on the host once per decision."""

    read_write: tuple[str, ...]
    read_only: tuple[str, ...]

    def access(self, path: str, host: Host) -> Access | None:
        """What `path` may be used for: read-write under a bind root, read-only under either kind, else None."""
        if host_path_under_roots(path, self.read_write, host):
            return "read-write"
        if self.read_only and host_path_under_roots(path, self.read_write + self.read_only, host):
            return "read-only"
        return None


def host_roots(rules: ArgumentRules, host: Host) -> HostRoots:
    """The bind roots and the read-only roots of `rules`, expanded and resolved on the host."""
    return HostRoots(_resolved(rules.bind_roots, host), _resolved(rules.read_only_roots, host))


def describe_roots(rules: ArgumentRules) -> str:
    """The roots as a site wrote them, for a refusal's reason."""
    described = "bind_roots are " + ", ".join(rules.bind_roots) if rules.bind_roots else "no bind_roots are set"
    if rules.read_only_roots:
        described += "; read_only_roots are " + ", ".join(rules.read_only_roots)
    return described


def read_write_refused(argument: str, doing: str, path: str, rules: ArgumentRules, fix: str) -> ArgvRefused:
    """The refusal of a read-write use of `path`, which lies under a read-only root and under no bind root.

    `doing` says what the option does with the path ("-v binds the host path"); `fix` says how the line
    could use it read-only ("add :ro to bind it read-only"), or why it cannot.
    """
    return ArgvRefused(
        READ_WRITE_RULE,
        argument,
        f"{doing} {path!r} in a way that can change the host files, and it lies under a read-only root, not "
        f"a bind root ({describe_roots(rules)}); {fix}, or a site may list its folder in bind_roots",
    )
