"""The rules for what a docker or podman line asks of the host's resources, and for who supervises the container.

A pod cannot be trusted with the host's memory, process table and CPU: a container without a pids limit can
fork until the host cannot, one with a negative OOM score adjustment makes the kernel kill host processes
before it, a tmpfs without a size may grow to half the host's memory and stays there after its processes
die, and raised resource limits (`memlock`, `rtprio`, `nice`) outlast anything inside the container. Each
option is judged against a number in the site's policy (`max_pids_limit`, `min_oom_score_adj`,
`max_tmpfs_size`, `max_storage_size`, `ulimits`) whose built-in value is the safe one; the rest are refused
by name (`--oom-kill-disable`, real-time CPU time) and give way to `allow_options`.

hostpipe stops the container it started when the job ends. A restart policy has the engine start it again
afterwards, outside any job, so it is refused unless `allow_restart`. The container-id file is hostpipe's own
(it adds `--cidfile` itself and stops exactly that container), so a line's own `--cidfile` is never allowed.

Numbers are read the way the runtime reads them (`govalues`); a value that could be read two ways, or that
hostpipe cannot read, is refused with what to write instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hostpipe.core.runtimes.base import ArgvRefused, Option
from hostpipe.core.runtimes.govalues import kernel_size, parse_int, ram_in_bytes

if TYPE_CHECKING:
    from hostpipe.core.runtimes.oci_checks import Judge

RESOURCE = "resource-limit"

SizeReader = Callable[[str], int | None]


def _refuse(option: Option, why: str, relax: str) -> ArgvRefused:
    return ArgvRefused(RESOURCE, option.spelling, f"{option.name} {why}; {relax}")


def _named(option: Option) -> str:
    return f'a site may allow it with allow_options: ["{option.name}"]'


def _number(option: Option, text: str, *, low: int = -(2**63)) -> int:
    number = parse_int(text, low=low)
    if number is None:
        raise _refuse(option, f"is given {text!r}, which hostpipe cannot read as the runtime does", "write a plain "
                      "decimal number (no leading zeros, no 0x, no underscores)")  # fmt: skip
    return number


def pids_limit(option: Option, judge: Judge) -> None:
    """--pids-limit: a positive number up to max_pids_limit; 0 and negative numbers mean unlimited."""
    limit = _number(option, option.value or "")
    maximum = judge.rules.max_pids_limit
    if maximum == -1:
        return
    if limit <= 0:
        raise _refuse(
            option,
            f"{limit} lets the container fork without limit, until the host runs out of processes",
            f"write a positive limit of at most {maximum}, or a site may set max_pids_limit = -1",
        )
    if limit > maximum:
        raise _refuse(option, f"{limit} is above the site's max_pids_limit {maximum}", f"write at most {maximum}")


def oom_score_adj(option: Option, judge: Judge) -> None:
    """--oom-score-adj: not below min_oom_score_adj (0), or the host's OOM killer spares the container."""
    score = _number(option, option.value or "")
    lowest = judge.rules.min_oom_score_adj
    if score < lowest:
        raise _refuse(
            option,
            f"{score} makes the kernel kill host processes before the container when memory runs out",
            f"write {lowest} or more, or a site may lower min_oom_score_adj",
        )


def oom_kill_disable(option: Option, judge: Judge) -> None:
    """--oom-kill-disable: the container's processes are never killed for memory; host processes are instead."""
    if option.value != "false" and not judge.named_allowed(option):
        raise _refuse(option, "keeps the kernel from killing the container when memory runs out", _named(option))


def realtime_cpu(option: Option, judge: Judge) -> None:
    """--cpu-rt-runtime, --cpu-rt-period: real-time CPU time, which starves every ordinary process on a CPU."""
    low = 0 if judge.kind == "podman" else -(2**63)  # podman reads these as unsigned
    if _number(option, option.value or "", low=low) != 0 and not judge.named_allowed(option):
        raise _refuse(option, "gives the container real-time CPU time", _named(option))


def ulimit(option: Option, judge: Judge) -> None:
    """--ulimit NAME=SOFT[:HARD]: only the names in `ulimits`, each at most its maximum (-1: unlimited too)."""
    value = option.value or ""
    if judge.named_allowed(option):
        return
    if value == "host" and judge.kind == "podman":
        raise _refuse(option, "host gives the container the limits of podman's own process", _named(option))
    name, sep, limits = value.partition("=")
    maximum = judge.rules.ulimits.get(name)
    if not sep or maximum is None:
        allowed = ", ".join(sorted(judge.rules.ulimits)) or "none"
        raise _refuse(
            option,
            f"sets {name!r}, which is not a limit this site lets a line raise (allowed: {allowed})",
            f"a site may allow it with ulimits = {{ {name or 'NAME'} = MAXIMUM }}",
        )
    values = limits.split(":")
    if len(values) > 2:
        raise _refuse(option, f"has {limits!r}, which is not SOFT[:HARD]", "write NAME=SOFT or NAME=SOFT:HARD")
    fix = f"write at most {maximum}"
    for text in values:
        number = _number(option, text)
        if maximum == -1:
            continue
        if number < 0:
            raise _refuse(
                option,
                f"{number} makes {name} unlimited (the engine reads any negative number as no limit)",
                f"write at most {maximum}, or a site may allow it with ulimits = {{ {name} = -1 }}",
            )
        if number > maximum:
            raise _refuse(option, f"{number} is above the site's maximum {maximum} for {name}", fix)


def tmpfs_size(option: Option, judge: Judge, text: str | None, read: SizeReader, what: str) -> None:
    """A tmpfs size: given, readable, not 0 (unlimited) and at most max_tmpfs_size."""
    maximum = judge.rules.max_tmpfs_size
    if maximum == -1:
        return
    fix = f"give it a size of at most {maximum} bytes (e.g. {what}=64m), or a site may raise max_tmpfs_size"
    if text is None:
        raise _refuse(option, "mounts a tmpfs without a size, which may grow to half the host's memory", fix)
    size = read(text)
    if size is None:
        raise _refuse(option, f"has the size {text!r}, which hostpipe cannot read as the runtime does", fix)
    if size == 0:
        raise _refuse(option, "has the size 0, which makes the tmpfs unlimited", fix)
    if size > maximum:
        raise _refuse(option, f"has the size {text!r} ({size} bytes), above the site's max_tmpfs_size", fix)


def tmpfs_mount_size(option: Option, judge: Judge, fields: Sequence[tuple[str, bool, str]]) -> None:
    """The size of a `--mount type=tmpfs`: docker's CLI reads tmpfs-size as a docker size, podman passes it on
    to the kernel as `size=`."""
    sizes = [setting for key, _, setting in fields if key == "tmpfs-size"]
    if len(sizes) > 1:
        raise ArgvRefused("mount-syntax", option.spelling, f"{option.name} gives tmpfs-size more than once")
    tmpfs_size(option, judge, sizes[0] if sizes else None, ram_in_bytes if judge.kind == "docker" else kernel_size,
          "tmpfs-size")  # fmt: skip


def shm_size(option: Option, judge: Judge) -> None:
    """--shm-size: the container's /dev/shm, a tmpfs (podman mounts it with exactly this size, 0 unlimited)."""
    tmpfs_size(option, judge, option.value or "", ram_in_bytes, "--shm-size")


def storage_opt(option: Option, judge: Judge) -> None:
    """docker --storage-opt: only `size=`, which overrides the engine's own quota, up to max_storage_size."""
    key, _, setting = (option.value or "").partition("=")
    if key.lower() != "size":
        if not judge.named_allowed(option):
            raise ArgvRefused(
                "option-refused",
                option.spelling,
                f"{option.name} sets the storage driver option {key!r}; {_named(option)}",
            )
        return
    maximum = judge.rules.max_storage_size
    size = ram_in_bytes(setting)
    if maximum == -1:
        return
    if maximum == 0 or size is None or size > maximum:
        limit = "may not set one" if maximum == 0 else f"may set at most {maximum} bytes"
        raise _refuse(
            option,
            f"size={setting} replaces the engine's own storage quota for the container",
            f"under this site's max_storage_size a line {limit}",
        )


RESTART = "restart-policy"


def restart(option: Option, judge: Judge) -> None:
    """--restart: `no` only, unless allow_restart; any other policy restarts the container after the job."""
    value = option.value or ""
    if value in ("", "no") or judge.rules.allow_restart:
        return
    raise ArgvRefused(
        RESTART,
        option.spelling,
        f"{option.name}={value} has the engine start the container again after hostpipe's job has ended, where "
        "no timeout, cancel or record reaches it; leave it out (or write --restart=no), or a site may set "
        "allow_restart = true",
    )


def health_on_failure(option: Option, judge: Judge) -> None:
    """podman --health-on-failure=restart restarts the container outside the job, as a restart policy does."""
    if option.value == "restart" and not judge.rules.allow_restart:
        raise ArgvRefused(
            RESTART,
            option.spelling,
            f"{option.name}=restart has podman start the container again by itself; write none, kill or stop, or "
            "a site may set allow_restart = true",
        )


def cidfile(option: Option, judge: Judge) -> None:
    """--cidfile: never from a line; hostpipe writes the container-id file itself."""
    raise ArgvRefused(
        "cidfile",
        option.spelling,
        f"{option.name} is hostpipe's own: it adds --cidfile with a file of its own to every {judge.kind} job, so "
        "that stopping the job stops exactly the container this job created; leave it out (`hostpipe ps --json` "
        "shows the job, and its log the container's output)",
    )
