"""How NERSC's shifter reads its argv, and what hostpipe lets a pod ask of it.

shifter has no subcommands: options, then an optional command. It reads options with getopt_long under
POSIXLY_CORRECT (see `getopt_long`), so the first word that is not an option starts the command. The image
comes from `--image`/`-i` only; shifter could also take it from the environment or from an image already
loaded for the user, which hostpipe does not allow: an argv without `--image` is refused.

The image is reported the way a policy's image globs can share patterns with docker and podman: shifter's
default image type (udiRoot.conf `defaultImageType`, `docker` as shipped) is assumed, and an explicit
`docker:` prefix is dropped, so `docker:ubuntu:22.04` and `ubuntu:22.04` are both the image `ubuntu:22.04`.
The other types keep their prefix (`id:...`, `custom:...`, `local:/path`). shifter silently deletes
characters it does not expect in an image or a volume path; hostpipe refuses such words instead, so the
image and paths a rule judges are the ones shifter uses.

Rules: every host path given with `-V/--volume` must lie under the runtime's `bind_roots`, or under its
`read_only_roots` when the volume carries shifter's read-only flag (`ro`, in any case, and no
`perNodeCache`); a `local:` image, which shifter only reads, may lie under either. A `perNodeCache` volume
makes shifter create a file of the size the line asks for on the node's disk (its `perNodeCacheSizeLimit`
setting is read but never enforced), so it is refused unless a site lists `perNodeCache` in `allow_options`.
`-m/--module` may name only the modules listed in `modules` (or `none`). `--env-file` and `--workdir` are
read after shifter has entered the image, so they name paths in the container, not on the host. shifter
also reads SHIFTER_IMAGE, SHIFTER_VOLUME and SHIFTER_MODULE from its environment; those reach it only
through a policy's `pass_env` or `env`.

What no line can change: shifter mounts the site's file systems (udiRoot.conf `siteFs`, the home folders
among them) and the host's /tmp and /var/tmp into every container, read-write, and a job cannot opt out.
hostpipe therefore counts the daemon user's HOME, /tmp and /var/tmp as folders every shifter job can write
(`hostpipe.core.writable`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hostpipe.core.runtimes.base import (
    ArgumentRules,
    ArgvRefused,
    Grammar,
    Host,
    Invocation,
    Option,
    OptionSpec,
)
from hostpipe.core.runtimes.getopt_long import read_options
from hostpipe.core.runtimes.roots import describe_roots, host_roots, read_write_refused

KIND = "shifter"

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(("--image", "-i"), takes_value=True),
    OptionSpec(("--volume", "-V"), takes_value=True),
    OptionSpec(("--module", "-m"), takes_value=True),
    OptionSpec(("--entrypoint", "--entry"), takes_value=True, optional_value=True),
    OptionSpec(("--workdir", "-w"), takes_value=True, optional_value=True),
    OptionSpec(("--env", "-e"), takes_value=True),
    OptionSpec(("--env-file",), takes_value=True),
    OptionSpec(("--clearenv", "-E"), takes_value=False),
    OptionSpec(("--verbose", "-v"), takes_value=False),
    OptionSpec(("--help", "-h"), takes_value=False),
    OptionSpec(("-n",), takes_value=False),
)
"""shifter's getopt_long table (optstring `hnvV:i:e:Ew::m:`); `-n` is accepted and does nothing."""

IMAGE_TYPES = ("docker", "custom", "id", "local")

# The characters shifter keeps in an image descriptor; anything else it deletes without a word.
_IMAGE_CHARS = re.compile(r"[A-Za-z0-9_:.+@/-]+")
# The characters shifter keeps in a volume path.
_VOLUME_PATH = re.compile(r"/[A-Za-z0-9_.+/-]*")
# The volume flags shifter lets a user ask for: read-only, and a per-node cache with its settings.
_VOLUME_FLAG = re.compile(r"(?i:ro|pernodecache(=[A-Za-z0-9=,.]*)?)")


def _image(option: Option) -> str:
    value = option.value or ""
    if not _IMAGE_CHARS.fullmatch(value):
        raise ArgvRefused(
            "bad-image",
            option.spelling,
            f"shifter would silently delete characters from the image {value!r} (it keeps letters, digits "
            "and _:.+@/-), so the image it runs is not the one written",
        )
    prefix, colon, tag = value.partition(":")
    if colon and prefix in IMAGE_TYPES:
        kind = prefix
    elif colon and prefix.replace("/", "") in IMAGE_TYPES:
        raise ArgvRefused(
            "bad-image",
            option.spelling,
            f"shifter would read {prefix!r} as the image type {prefix.replace('/', '')!r}; write the type without '/'",
        )
    else:
        kind, tag = "docker", value
    if not tag:
        raise ArgvRefused("bad-image", option.spelling, "the image names a type but no image")
    if kind in ("id", "custom") and "/" in tag:
        raise ArgvRefused(
            "bad-image",
            option.spelling,
            f"shifter deletes '/' from {kind} images, so {tag!r} is not the image it would run",
        )
    return tag if kind == "docker" else f"{kind}:{tag}"


PER_NODE_CACHE = "perNodeCache"
"""The name a site lists in `allow_options` to let lines ask for per-node cache volumes."""


@dataclass(frozen=True)
class Volume:
    """One volume of a `-V/--volume` value: its host path, and how shifter mounts it."""

    source: str
    read_only: bool
    per_node_cache: bool


def volumes(option: Option) -> tuple[Volume, ...]:
    """The volumes one `-V/--volume` value asks for.

    A value is `from:to[:flag...]`, several joined by `;`. shifter reads the flag `ro` without regard to
    case; a per-node cache is not counted as read-only. Raises ArgvRefused for any volume shifter would
    reject or read differently from how it is written.
    """
    found: list[Volume] = []
    for volume in (option.value or "").split(";"):
        if not volume:
            continue  # shifter skips empty entries between separators
        parts = volume.split(":")
        problem = None
        if len(parts) < 2:
            problem = "names no container path (write from:to)"
        elif not all(_VOLUME_PATH.fullmatch(path) for path in parts[:2]):
            problem = "needs two absolute paths made of letters, digits and _.+/- (shifter deletes other characters)"
        elif any(".." in path for path in parts[:2]):
            problem = "uses '..' (shifter refuses it)"
        elif not all(_VOLUME_FLAG.fullmatch(flag) for flag in parts[2:]):
            problem = "asks for a flag other than ro or perNodeCache"
        if problem is not None:
            raise ArgvRefused("bad-volume", option.spelling, f"the volume {volume!r} {problem}")
        flags = [flag.lower() for flag in parts[2:]]
        cache = any(flag.startswith("pernodecache") for flag in flags)
        found.append(Volume(parts[0], read_only="ro" in flags and not cache, per_node_cache=cache))
    if not found:
        raise ArgvRefused("bad-volume", option.spelling, f"{option.spelling!r} names no volume")
    return tuple(found)


def parse(words: tuple[str, ...]) -> Invocation:
    """Read shifter's argv[1:]; refuse it without an `--image`, or with more than one."""
    options, command = read_options(words, OPTIONS, command=KIND)
    images = [option for option in options if option.name == "--image"]
    if not images:
        raise ArgvRefused(
            "missing-image",
            KIND,
            "shifter needs --image=...; hostpipe does not let it pick an image from the environment",
        )
    if len(images) > 1:
        raise ArgvRefused(
            "repeated-image",
            images[1].spelling,
            "--image is given more than once; shifter would silently use the last one",
        )
    for option in options:
        if option.name == "--volume":
            volumes(option)
    return Invocation(
        kind=KIND,
        global_options=(),
        subcommand="",
        options=options,
        image=_image(images[0]),
        args=command,
    )


def _check_modules(option: Option, rules: ArgumentRules) -> None:
    value = (option.value or "").strip(" \t\n\v\f\r")  # what C's isspace trims, no more
    if value.lower() == "none":
        return
    for module in value.split(","):
        if module and module not in rules.modules:
            allowed = ", ".join(rules.modules) or "none"
            raise ArgvRefused(
                "module-not-allowed",
                option.spelling,
                f"--module asks for the shifter module {module!r}, which this site does not allow "
                f'(allowed: {allowed}); a site can allow it with modules = ["{module}"] in [runtimes.shifter]',
            )


def check(invocation: Invocation, rules: ArgumentRules, host: Host) -> None:
    """Refuse volumes and local images outside the roots, per-node caches, and modules not in `modules`."""
    roots = host_roots(rules, host)
    for option in invocation.options:
        if option.name == "--volume":
            for volume in volumes(option):
                if volume.per_node_cache and PER_NODE_CACHE not in rules.allow_options:
                    raise ArgvRefused(
                        "per-node-cache",
                        option.spelling,
                        "-V/--volume asks shifter for a per-node cache, a file of any size the line names on "
                        "the node's own disk; a site can allow it with "
                        f'allow_options = ["{PER_NODE_CACHE}"] in [runtimes.shifter]',
                    )
                access = roots.access(volume.source, host)
                if access is None:
                    raise ArgvRefused(
                        "bind-outside-roots",
                        option.spelling,
                        f"-V/--volume mounts the host path {volume.source!r}, which is not under any root "
                        f"({describe_roots(rules)}); a site can add its folder to bind_roots in [runtimes.shifter]",
                    )
                if access == "read-only" and not volume.read_only:
                    doing = "-V/--volume mounts the host path"
                    raise read_write_refused(
                        option.spelling, doing, volume.source, rules, "add :ro to mount it read-only"
                    )
        elif option.name == "--module":
            _check_modules(option, rules)
    image = invocation.image or ""
    if image.startswith("local:"):
        path = image.removeprefix("local:")
        if roots.access(path, host) is None:
            written = [option.spelling for option in invocation.options if option.name == "--image"]
            raise ArgvRefused(
                "image-outside-roots",
                written[0] if written else image,
                f"--image runs the host folder {path!r} as a local image, and it is not under any root "
                f"({describe_roots(rules)}); a site can add its folder to bind_roots or read_only_roots in "
                "[runtimes.shifter]",
            )


GRAMMAR = Grammar(kind=KIND, parse=parse, check=check, subcommands=())
