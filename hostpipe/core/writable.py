"""Which host folders the jobs of each runtime can write, and whether one of them holds what later jobs run with.

A job that can write the policy file, the state folder, a runtime's client configuration or an executable
the daemon runs changes what every later job runs with: an apptainer job that rewrites the policy file is
reloaded into the policy a second later, and a job that writes a docker context and an ssh configuration
has the next ordinary `docker run` run a program on the host. So before a policy is used, every place the
daemon and its runtimes read (`Kept`) is compared with every folder the jobs of an enabled, installed
runtime can write (`Opening`), and any overlap (`Exposure`) stops the policy: a policy file is refused, at
start and on reload, with one line per place that says why and what to do; the built-in policy leaves the
writing runtime out instead (`withheld`), so that `hostpipe serve` still starts on an ordinary host.

What jobs can write, by runtime (`job_openings`): every folder in `bind_roots`; for apptainer and
singularity the host's /tmp, /var/tmp and /dev (so /dev/shm), which apptainer.conf binds by default, and the
daemon user's home folder when the runtime's `home_bind` is "read-write"; for shifter the home folder and
/tmp and /var/tmp, which shifter mounts into every container. hostpipe adds `--no-mount=home,cwd` to every
apptainer line, so the jobs' working folder (HOME) is not bound otherwise. The home folder is both the
HOME the daemon runs with and the one in the user's passwd entry, which is what apptainer and ssh use.

What later jobs run with (`daemon_kept`, `client_files`): the policy file (also where the built-in policy
would find one), the state folder (records, logs, container id files, the control socket), every folder on
PATH (jobs and runtimes look programs up there, and executables are resolved there on every reload), each
runtime's resolved executable, hostpipe's own code, and the files each runtime's client reads, found the
way the client finds them from the job's environment.

This module only compares paths. The daemon gathers them, expands them and resolves their symlinks
(`hostpipe.daemon.exposure`); each `Place` carries both the path as named and where it leads, and an overlap
of either counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hostpipe.core.policy import APPTAINER_KINDS, RuntimePolicy
from hostpipe.core.runtimes.roots import expand_root, inside


@dataclass(frozen=True)
class Spot:
    """A path to resolve on the host, what it is, and what a site does about it."""

    path: str
    what: str
    fix: str | None


@dataclass(frozen=True)
class Place:
    """An absolute path as hostpipe names it, and where it leads on the host now."""

    path: str
    resolved: str


@dataclass(frozen=True)
class Kept:
    """Something later jobs run with."""

    what: str
    place: Place
    fix: str


@dataclass(frozen=True)
class Opening:
    """A folder every job of `runtime` can write."""

    runtime: str
    place: Place
    how: str
    fix: str | None
    """The policy setting that closes it, or None when it comes with the runtime."""


@dataclass(frozen=True)
class Exposure:
    """A folder some jobs can write that holds, or lies inside, something later jobs run with."""

    kept: Kept
    opening: Opening
    relation: str
    """How the opening meets the kept place: "which is", "which holds" or "which lies inside"."""

    def reason(self) -> str:
        """One line: which jobs can write what, what it holds, and what to do."""
        opening, kept = self.opening, self.kept
        relation = self.relation
        where = kept.place.path
        if kept.place.resolved != kept.place.path:
            where += f" (which leads to {kept.place.resolved})"
        text = (
            f"{opening.runtime} jobs can write {opening.place.path} ({opening.how}), {relation} {kept.what} "
            f"{where}, so a job could change what later jobs run with; {kept.fix}"
        )
        if opening.fix:
            text += f", or {opening.fix}"
        return text


def _overlap(kept: Place, opening: Place) -> str | None:
    """How `opening` meets `kept` (see `Exposure.relation`), by the paths as named or as resolved; None
    when they are apart."""
    for k in (kept.path, kept.resolved):
        for o in (opening.path, opening.resolved):
            if k == o:
                return "which is"
            if inside(k, o):
                return "which holds"
            if inside(o, k):
                return "which lies inside"
    return None


def exposures(kept: Iterable[Kept], openings: Iterable[Opening]) -> tuple[Exposure, ...]:
    """Every pair of a kept place and an opening that overlap, in the order the kept places come."""
    openings = tuple(openings)
    found: list[Exposure] = []
    for item in kept:
        for opening in openings:
            relation = _overlap(item.place, opening.place)
            if relation is not None:
                found.append(Exposure(item, opening, relation))
    return tuple(found)


def problems(found: Iterable[Exposure]) -> list[str]:
    """One line per kept place some jobs can write, for refusing a policy file."""
    lines: dict[Place, str] = {}
    for exposure in found:
        lines.setdefault(exposure.kept.place, f"runtimes.{exposure.opening.runtime}: {exposure.reason()}")
    return list(lines.values())


def withheld(found: Iterable[Exposure]) -> dict[str, str]:
    """The runtimes the built-in policy leaves out, each with the reason a refused line gives."""
    reasons: dict[str, str] = {}
    for exposure in found:
        runtime = exposure.opening.runtime
        reasons.setdefault(
            runtime,
            f"the built-in policy does not run {runtime} on this host: {exposure.reason()}; then name {runtime} "
            "in a policy file",
        )
    return reasons


# --- what jobs can write ----------------------------------------------------------------------------------

_APPTAINER_TMP = "apptainer binds the host's /tmp and /var/tmp into every job, as apptainer.conf's mount tmp does"
_APPTAINER_DEV = "apptainer binds the host's /dev, and so /dev/shm, into every job, as apptainer.conf's mount dev does"
_SHIFTER_HOME = "shifter mounts the home folders into every job, as udiRoot.conf's siteFs says, whatever a line asks"
_SHIFTER_TMP = "shifter mounts the host's /tmp and /var/tmp into every job"


def job_openings(name: str, runtime: RuntimePolicy, homes: tuple[str, ...]) -> tuple[Spot, ...]:
    """The folders every job of runtime `name` can write: what the runtime binds itself, and its bind roots.

    `homes` are the daemon user's home folders (its HOME, its passwd entry's). A bind root that is not
    absolute once `~` is expanded covers nothing and opens nothing.
    """
    spots: list[Spot] = []
    if runtime.kind in APPTAINER_KINDS:
        spots += [Spot("/tmp", _APPTAINER_TMP, None), Spot("/var/tmp", _APPTAINER_TMP, None)]
        spots.append(Spot("/dev/shm", _APPTAINER_DEV, None))
        if runtime.home_bind == "read-write":
            how = f'home_bind = "read-write" in [runtimes.{name}]'
            fix = f'set home_bind = "read-only" (or "none") in [runtimes.{name}]'
            spots += [Spot(home, how, fix) for home in homes]
    elif runtime.kind == "shifter":
        spots += [Spot(home, _SHIFTER_HOME, None) for home in homes]
        spots += [Spot("/tmp", _SHIFTER_TMP, None), Spot("/var/tmp", _SHIFTER_TMP, None)]
    for root in runtime.bind_roots:
        expanded = expand_root(root, homes[0])
        if expanded is None or "\0" in expanded:
            continue
        how = f'bind_roots lists "{root}" in [runtimes.{name}]'
        spots.append(Spot(expanded, how, f'take "{root}" out of bind_roots of [runtimes.{name}]'))
    return tuple(spots)


# --- what later jobs run with -----------------------------------------------------------------------------


def daemon_kept(
    *, policy: str | None, state_dir: str, path_entries: tuple[str, ...], own_code: str
) -> tuple[Spot, ...]:
    """What every job runs with, whatever its runtime: the policy, the state folder, PATH, hostpipe itself."""
    spots: list[Spot] = []
    if policy is not None:
        spots.append(
            Spot(
                policy,
                "the policy file",
                "keep the policy where no job can write, a file the daemon user cannot change: "
                "hostpipe serve --policy /etc/hostpipe/policy.toml",
            )
        )
    spots.append(
        Spot(
            state_dir,
            "the state folder",
            "give hostpipe a state folder no job can write: hostpipe serve --state-dir /var/lib/hostpipe",
        )
    )
    spots += [
        Spot(
            entry,
            "a folder on PATH, where the daemon resolves runtimes on every reload and runtimes find their helpers",
            "start hostpipe with a PATH that leaves out every folder a job can write",
        )
        for entry in path_entries
    ]
    spots.append(
        Spot(own_code, "hostpipe's own code", "install hostpipe where no job can write (a system or /opt virtualenv)")
    )
    return tuple(spots)


def path_entries(path: str, job_cwd: str, daemon_cwd: str) -> tuple[str, ...]:
    """The folders a PATH value names, absolute. A relative entry (`.`, an empty one) names a folder under
    the working folder of whoever looks it up: the jobs' (HOME) and the daemon's own."""
    entries: list[str] = []
    for entry in path.split(":"):
        if entry.startswith("/"):
            candidates = [entry]
        else:
            candidates = [f"{cwd.rstrip('/')}/{entry}".rstrip("/") or "/" for cwd in (job_cwd, daemon_cwd)]
        entries += [c for c in candidates if c not in entries]
    return tuple(entries)


def _in_home(env: Mapping[str, str], *parts: str) -> str:
    """A path under the HOME of the job's environment, where a client looks when no variable says otherwise."""
    return "/".join((env.get("HOME", "").rstrip("/"), *parts))


def _or_home(env: Mapping[str, str], variable: str, *parts: str) -> str:
    """$variable when the job's environment sets it, else HOME/parts."""
    return env.get(variable) or _in_home(env, *parts)


def _xdg(env: Mapping[str, str], variable: str, default: str, *rest: str) -> str:
    """An XDG base folder ($variable, else HOME/default) with `rest` under it."""
    return "/".join((_or_home(env, variable, default).rstrip("/"), *rest))


def _prefix(executable: str) -> str:
    """The installation prefix of an executable in PREFIX/bin."""
    folder = executable.rsplit("/", 1)[0]
    return folder.rsplit("/", 1)[0] or "/"


def client_files(
    name: str, runtime: RuntimePolicy, env: Mapping[str, str], homes: tuple[str, ...], executable: str
) -> tuple[Spot, ...]:
    """The files the client of runtime `name` reads when a job runs, found from the job's environment `env`."""
    table = f"[runtimes.{name}]"
    relocate = 'give it one no job can write with env = {{ {} = "/etc/hostpipe/{}" }} in ' + table
    ssh = [
        Spot(
            f"{home}/.ssh",
            f"the ssh configuration {name} uses for ssh:// hosts and contexts",
            "ssh reads it from the user's home whatever the environment says, so run the runtimes whose jobs "
            "can write that home from another account",
        )
        for home in homes
    ]
    docker_config = Spot(
        _or_home(env, "DOCKER_CONFIG", ".docker"),
        f"the docker client configuration {name} reads",
        relocate.format("DOCKER_CONFIG", "docker"),
    )
    spots: list[Spot] = []
    if runtime.kind == "docker":
        spots.append(docker_config)
        if env.get("DOCKER_CERT_PATH"):
            spots.append(
                Spot(
                    env["DOCKER_CERT_PATH"],
                    "docker's TLS certificates",
                    relocate.format("DOCKER_CERT_PATH", "docker-tls"),
                )
            )
        spots += ssh
        rootless = "the rootless docker engine's images, containers and daemon.json"
        spots += [
            Spot(_xdg(env, "XDG_DATA_HOME", ".local/share", "docker"), rootless, "keep it out of every bind root"),
            Spot(_xdg(env, "XDG_CONFIG_HOME", ".config", "docker"), rootless, "keep it out of every bind root"),
        ]
        spots += [
            Spot(f"{base}/docker/cli-plugins", "docker's CLI plugins", "keep it out of every bind root")
            for base in ("/usr/local/lib", "/usr/local/libexec", "/usr/lib", "/usr/libexec")
        ]
    elif runtime.kind == "podman":
        for variable in (
            "CONTAINERS_CONF",
            "CONTAINERS_CONF_OVERRIDE",
            "CONTAINERS_REGISTRIES_CONF",
            "CONTAINERS_STORAGE_CONF",
            "REGISTRY_AUTH_FILE",
        ):
            if env.get(variable):
                spots.append(Spot(env[variable], f"podman's {variable}", relocate.format(variable, variable.lower())))
        spots.append(
            Spot(
                _xdg(env, "XDG_CONFIG_HOME", ".config", "containers"),
                "podman's user configuration (containers.conf, registries.conf, storage.conf, policy.json)",
                relocate.format("XDG_CONFIG_HOME", "config"),
            )
        )
        spots.append(
            Spot(
                _xdg(env, "XDG_DATA_HOME", ".local/share", "containers"),
                "podman's rootless image and container storage",
                relocate.format("XDG_DATA_HOME", "data") + " (or a CONTAINERS_STORAGE_CONF naming other storage)",
            )
        )
        if env.get("XDG_RUNTIME_DIR"):
            logins = f"{env['XDG_RUNTIME_DIR'].rstrip('/')}/containers"
            spots.append(Spot(logins, "podman's registry logins", relocate.format("REGISTRY_AUTH_FILE", "auth.json")))
        system = "the system's container configuration and storage"
        spots += [
            Spot(path, system, "keep it out of every bind root")
            for path in ("/etc/containers", "/usr/share/containers", "/var/lib/containers", "/run/containers")
        ]
        spots.append(docker_config)
        spots += ssh
    elif runtime.kind in APPTAINER_KINDS:
        config = env.get("APPTAINER_CONFIGDIR") or env.get("SINGULARITY_CONFIGDIR")
        spots.append(
            Spot(
                config or _in_home(env, ".apptainer"),
                f"{name}'s user configuration and image cache",
                relocate.format("APPTAINER_CONFIGDIR", "apptainer"),
            )
        )
        spots.append(
            Spot(
                _or_home(env, "SINGULARITY_CONFIGDIR", ".singularity"),
                "the singularity configuration apptainer carries over, and SingularityCE's own",
                relocate.format("SINGULARITY_CONFIGDIR", "singularity"),
            )
        )
        for variable in ("APPTAINER_CACHEDIR", "SINGULARITY_CACHEDIR"):
            if env.get(variable):
                spots.append(Spot(env[variable], f"{name}'s image cache", relocate.format(variable, "cache")))
        spots.append(docker_config)
        prefix = _prefix(executable)
        site = f"{name}'s site configuration"
        for base in dict.fromkeys(("/etc", "/usr/local/etc", f"{prefix.rstrip('/')}/etc")):
            spots += [
                Spot(f"{base}/{folder}", site, "keep it out of every bind root")
                for folder in ("apptainer", "singularity")
            ]
    elif runtime.kind == "shifter":
        prefix = _prefix(executable)
        site = "shifter's site configuration"
        spots += [
            Spot(path, site, "keep it out of every bind root")
            for path in dict.fromkeys(("/etc/shifter", f"{prefix.rstrip('/')}/etc/udiRoot.conf"))
        ]
    return tuple(spots)


def executable_kept(name: str, executable: str) -> Spot:
    """The executable a runtime's jobs run."""
    return Spot(
        executable,
        f"{name}'s executable",
        f'install {name} where no job can write and set executable = "/usr/bin/{name}" in [runtimes.{name}]',
    )
