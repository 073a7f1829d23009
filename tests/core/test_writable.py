"""Which folders jobs can write, what later jobs run with, and the comparison between them (pure paths)."""

from __future__ import annotations

import pytest

from hostpipe.core import writable
from hostpipe.core.policy import Policy, RuntimePolicy
from hostpipe.core.writable import Kept, Opening, Place

HOMES = ("/home/hp", "/home/pw")
ENV = {"HOME": "/home/hp", "PATH": "/usr/bin"}


def runtime(kind: str, **settings: object) -> RuntimePolicy:
    return Policy.model_validate({"runtimes": {kind: settings}}).runtimes[kind]


def place(path: str, resolved: str | None = None) -> Place:
    return Place(path, resolved or path)


OVERLAPS = [
    # (kept, opening, relation)
    (place("/home/hp/.config/hostpipe/policy.toml"), place("/home/hp"), "which holds"),
    (place("/home/hp/.docker"), place("/home/hp/.docker"), "which is"),
    (place("/var/lib/hostpipe"), place("/var/lib/hostpipe/logs"), "which lies inside"),
    (place("/srv/state"), place("/"), "which holds"),
    # Only where the kept place leads is inside: a symlink into a writable folder.
    (place("/etc/hostpipe/policy.toml", "/home/hp/policy.toml"), place("/home/hp"), "which holds"),
    # Only where the opening leads: a bind root that is a symlink.
    (place("/var/lib/hostpipe"), place("/data", "/var/lib"), "which holds"),
    # Apart, however close the names.
    (place("/home/hp2/policy.toml"), place("/home/hp"), None),
    (place("/tmpfile"), place("/tmp"), None),
    (place("/var/lib/hostpipe"), place("/var/tmp"), None),
]


@pytest.mark.parametrize(("kept", "opening", "relation"), OVERLAPS)
def test_a_kept_place_is_exposed_when_either_reading_of_either_path_overlaps(
    kept: Place, opening: Place, relation: str | None
) -> None:
    """Inside, equal or holding, by the path as named or as resolved, counts; a shared prefix does not."""
    found = writable.exposures([Kept("the thing", kept, "move it")], [Opening("x", opening, "how", None)])
    assert [exposure.relation for exposure in found] == ([relation] if relation else [])


def test_reason_names_the_runtime_the_folder_what_lies_there_and_both_fixes() -> None:
    """One line says who can write where, what that holds (and where it leads), and what a site does."""
    kept = Kept("the policy file", place("/etc/hp.toml", "/home/hp/hp.toml"), "keep it elsewhere")
    opening = Opening("apptainer", place("/home/hp"), 'home_bind = "read-write"', 'set home_bind = "none"')
    (exposure,) = writable.exposures([kept], [opening])
    assert exposure.reason() == (
        'apptainer jobs can write /home/hp (home_bind = "read-write"), which holds the policy file /etc/hp.toml '
        "(which leads to /home/hp/hp.toml), so a job could change what later jobs run with; keep it elsewhere, "
        'or set home_bind = "none"'
    )


def test_problems_are_one_line_per_place_and_withheld_is_one_reason_per_runtime() -> None:
    """A policy file gets one problem per exposed place; the built-in policy withholds each writing runtime."""
    kept = [Kept("a", place("/home/hp/a"), "fa"), Kept("b", place("/tmp/b"), "fb")]
    openings = [
        Opening("shifter", place("/home/hp"), "home", None),
        Opening("shifter", place("/tmp"), "tmp", None),
        Opening("apptainer", place("/tmp"), "tmp", None),
    ]
    found = writable.exposures(kept, openings)
    assert [(e.kept.what, e.opening.runtime) for e in found] == [("a", "shifter"), ("b", "shifter"), ("b", "apptainer")]
    lines = writable.problems(found)
    assert [line.split(":")[0] for line in lines] == ["runtimes.shifter", "runtimes.shifter"]
    withheld = writable.withheld(found)
    assert sorted(withheld) == ["apptainer", "shifter"]
    assert withheld["shifter"].startswith("the built-in policy does not run shifter on this host: shifter jobs")
    assert withheld["apptainer"].endswith("then name apptainer in a policy file")


OPENINGS = [
    # apptainer binds /tmp, /var/tmp and /dev by default; hostpipe's --no-mount=home,cwd keeps HOME out.
    (runtime("apptainer"), ["/tmp", "/var/tmp", "/dev/shm"]),
    (runtime("singularity", home_bind="read-only"), ["/tmp", "/var/tmp", "/dev/shm"]),
    (runtime("apptainer", home_bind="read-write"), ["/tmp", "/var/tmp", "/dev/shm", *HOMES]),
    # shifter mounts the home folders, /tmp and /var/tmp whatever a line says.
    (runtime("shifter"), [*HOMES, "/tmp", "/var/tmp"]),
    # docker and podman write only their bind roots; read-only roots open nothing to writing.
    (runtime("docker"), []),
    (
        runtime("podman", bind_roots=["~/data", "$HOME/x", "/srv", "relative"], read_only_roots=["/etc"]),
        ["/home/hp/data", "/home/hp/x", "/srv"],
    ),
]


@pytest.mark.parametrize(("rules", "paths"), OPENINGS)
def test_folders_jobs_can_write_follow_the_runtime_and_its_bind_roots(rules: RuntimePolicy, paths: list[str]) -> None:
    """What each runtime binds read-write by itself, plus every bind root that is absolute once expanded."""
    assert [spot.path for spot in writable.job_openings("rt", rules, HOMES)] == paths


CLIENT_FILES = [
    # docker: DOCKER_CONFIG or ~/.docker, ssh in both homes, the rootless engine's folders, CLI plugins.
    ("docker", {}, ["/home/hp/.docker", "/home/hp/.ssh", "/home/pw/.ssh", "/home/hp/.local/share/docker"]),
    ("docker", {"DOCKER_CONFIG": "/etc/hp/docker", "XDG_DATA_HOME": "/data"}, ["/etc/hp/docker", "/data/docker"]),
    # podman: its variables when set, XDG folders, the system's, docker's config for logins, ssh.
    ("podman", {}, ["/home/hp/.config/containers", "/home/hp/.local/share/containers", "/etc/containers"]),
    (
        "podman",
        {"CONTAINERS_CONF": "/etc/hp/c.conf", "XDG_CONFIG_HOME": "/cfg", "XDG_RUNTIME_DIR": "/run/user/7"},
        ["/etc/hp/c.conf", "/cfg/containers", "/run/user/7/containers", "/home/hp/.docker"],
    ),
    # apptainer: its config folder (and the cache in it), singularity's, docker's config, apptainer.conf.
    ("apptainer", {}, ["/home/hp/.apptainer", "/home/hp/.singularity", "/home/hp/.docker", "/opt/app/etc/apptainer"]),
    ("apptainer", {"APPTAINER_CONFIGDIR": "/etc/hp/a", "APPTAINER_CACHEDIR": "/cache"}, ["/etc/hp/a", "/cache"]),
    ("shifter", {}, ["/etc/shifter", "/opt/app/etc/udiRoot.conf"]),
]


@pytest.mark.parametrize(("kind", "env", "paths"), CLIENT_FILES)
def test_client_files_are_found_the_way_each_client_finds_them(
    kind: str, env: dict[str, str], paths: list[str]
) -> None:
    """Each client's files come from the job's environment, as the client itself would look them up."""
    found = [spot.path for spot in writable.client_files(kind, runtime(kind), {**ENV, **env}, HOMES, "/opt/app/bin/x")]
    assert set(paths) <= set(found), sorted(found)


def test_relocating_a_client_configuration_is_the_fix_given() -> None:
    """The fix for docker's configuration is the env line that moves it, as valid TOML."""
    (config, *_) = writable.client_files("docker", runtime("docker"), ENV, HOMES, "/usr/bin/docker")
    assert (
        config.fix
        == 'give it one no job can write with env = { DOCKER_CONFIG = "/etc/hostpipe/docker" } in [runtimes.docker]'
    )


def test_path_entries_are_absolute_and_relative_ones_count_in_both_working_folders() -> None:
    """A relative PATH entry (and an empty one) names a folder under the jobs' and the daemon's working folder."""
    entries = writable.path_entries("/usr/bin::bin:/usr/bin", "/home/hp", "/srv/hostpipe")
    assert entries == ("/usr/bin", "/home/hp", "/srv/hostpipe", "/home/hp/bin", "/srv/hostpipe/bin")


def test_daemon_kept_holds_the_policy_the_state_path_and_hostpipe() -> None:
    """Every job runs with the policy file, the state folder, PATH's folders and hostpipe's own code."""
    spots = writable.daemon_kept(policy="/p.toml", state_dir="/s", path_entries=("/usr/bin",), own_code="/code")
    assert [spot.path for spot in spots] == ["/p.toml", "/s", "/usr/bin", "/code"]
    assert "--policy" in spots[0].fix and "--state-dir" in spots[1].fix
    without_file = writable.daemon_kept(policy=None, state_dir="/s", path_entries=(), own_code="/code")
    assert [spot.path for spot in without_file] == ["/s", "/code"]
