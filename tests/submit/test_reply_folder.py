"""The shared folder as a pod that is root in its container sees it: every entry the daemon uses can be
replaced by a symlink, a file or a folder of another user. Each attack fails without a byte written outside
the folder, and the daemon goes on with entries of its own."""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DEFAULT_POLICY, Daemon, wait_for

from .support import Client, published, records_with, replies, wait_state

OTHER_UID = 4242


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the shared one, with a file the daemon user could write: what a symlink points at."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "victim").write_text("precious\n")
    return folder


def snapshot(folder: Path) -> dict[str, tuple[bytes | None, int, int]]:
    found: dict[str, tuple[bytes | None, int, int]] = {}
    for path in folder.rglob("*"):
        info = path.lstat()
        content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
        found[str(path.relative_to(folder))] = (content, info.st_mtime_ns, info.st_mode)
    return found


def own_folder(path: Path) -> bool:
    """A folder of ours at `path`; False while nothing is there (between the daemon's unlink and its mkdir)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()


def count(daemon: Daemon, event: str) -> int:
    return sum(e.get("event") == event for e in daemon.events())


def pipe_folder(tmp_path: Path, name: str = "d") -> Path:
    folder = tmp_path / name / "hostpipe"
    folder.mkdir(parents=True)
    return folder


def test_symlinked_replies_and_bin_at_start_are_replaced_not_followed(
    fresh_daemon: Callable[..., Daemon], tmp_path: Path, outside: Path
) -> None:
    """replies/ and bin/ planted as symlinks before the daemon starts are replaced by folders of its own."""
    folder = pipe_folder(tmp_path)
    (folder / "replies").symlink_to(outside)
    (folder / "bin").symlink_to(outside)
    before = snapshot(outside)

    daemon = fresh_daemon(folder=folder.parent)
    result = Client("dash", daemon).run("--wait", "--", "docker", "run", "img", "echo", "served")

    assert result.returncode == 0, result.stderr
    assert "served" in result.stdout
    assert own_folder(folder / "replies") and own_folder(folder / "bin")
    assert snapshot(outside) == before


def test_replies_and_bin_of_another_user_are_not_used(fresh_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    """Folders of another uid at replies/ and bin/ are taken away, and the daemon makes its own."""
    folder = pipe_folder(tmp_path)
    for name in ("replies", "bin"):
        (folder / name).mkdir()
        (folder / name / "planted").write_text("x")
        os.chown(folder / name, OTHER_UID, OTHER_UID)

    daemon = fresh_daemon(folder=folder.parent)

    assert own_folder(folder / "replies") and own_folder(folder / "bin")
    assert not (folder / "replies" / "planted").exists()
    assert Client("python", daemon).run("--wait", "--", "docker", "run", "img", "true").returncode == 0


def test_replies_swapped_for_a_symlink_while_serving_is_made_again(
    fresh_daemon: Callable[..., Daemon], tmp_path: Path, outside: Path
) -> None:
    """replies/ renamed away and replaced by a symlink under a running daemon: it makes replies/ again."""
    daemon = fresh_daemon()
    folder = daemon.pipe.parent
    before = snapshot(outside)
    (folder / "replies").rename(folder / "moved")
    (folder / "replies").symlink_to(outside)

    wait_for(lambda: own_folder(folder / "replies"), 10)
    result = Client("busybox", daemon).run("--wait", "--", "docker", "run", "img", "echo", "again")

    assert result.returncode == 0, result.stderr
    assert snapshot(outside) == before


@pytest.mark.parametrize("attack", ["content", "mode", "symlink", "removed", "bin-symlink", "hard-link"])
def test_the_published_client_is_put_back(
    attack: str, fresh_daemon: Callable[..., Daemon], tmp_path: Path, outside: Path
) -> None:
    """Whatever a pod does to bin/hostpipe-submit, the daemon puts its own back within a few ticks, without
    writing through a link."""
    daemon = fresh_daemon()
    path = published(daemon)
    original = path.read_bytes()
    before = snapshot(outside)
    wanted = "client_published" if attack in ("removed", "bin-symlink") else "client_restored"
    seen = count(daemon, wanted)
    if attack == "content":
        path.write_bytes(original.replace(b"hostpipe", b"evilpipe"))
    elif attack == "mode":
        path.chmod(0o777)
    elif attack == "symlink":
        path.unlink()
        path.symlink_to(outside / "victim")
    elif attack == "removed":
        path.unlink()
    elif attack == "bin-symlink":
        shutil.rmtree(path.parent)
        path.parent.symlink_to(outside)
    elif attack == "hard-link":
        os.link(path, outside / "linked")  # another name for the file, which a pod could then change
        before = snapshot(outside)

    def restored() -> bool:
        try:
            info = path.lstat()
        except FileNotFoundError:
            return False
        return (
            stat.S_ISREG(info.st_mode)
            and stat.S_IMODE(info.st_mode) == 0o755
            and info.st_nlink == 1
            and path.read_bytes() == original
            and own_folder(path.parent)
        )

    wait_for(restored, 10)
    assert snapshot(outside) == before
    wait_for(lambda: count(daemon, wanted) > seen, 5)


def test_a_reply_folder_planted_as_a_symlink_under_a_key_is_refused(
    fresh_daemon: Callable[..., Daemon], tmp_path: Path, outside: Path
) -> None:
    """A symlink at replies/NONCE before the key's line arrives: the line is refused, nothing is written."""
    daemon = fresh_daemon()
    key = secrets.token_hex(32)
    (replies(daemon) / key[:32]).symlink_to(outside)
    before = snapshot(outside)

    daemon.write(f"HOSTPIPE_REPLY={key} docker run img echo planted-symlink\n")
    [record] = wait_for(lambda: records_with(daemon, "planted-symlink"), 10)

    assert (record["state"], record["rule"]) == ("refused", "reply-unsafe")
    assert snapshot(outside) == before


def test_a_reply_folder_of_another_user_under_a_key_is_refused(fresh_daemon: Callable[..., Daemon]) -> None:
    """A folder of another uid at replies/NONCE: the line is refused and nothing is written into the folder."""
    daemon = fresh_daemon()
    key = secrets.token_hex(32)
    planted = replies(daemon) / key[:32]
    planted.mkdir()
    os.chown(planted, OTHER_UID, OTHER_UID)

    daemon.write(f"HOSTPIPE_REPLY={key} docker run img echo planted-foreign\n")
    [record] = wait_for(lambda: records_with(daemon, "planted-foreign"), 10)

    assert (record["state"], record["rule"]) == ("refused", "reply-unsafe")
    assert list(planted.iterdir()) == []


def test_links_planted_inside_a_reply_are_replaced_not_written_through(
    fresh_daemon: Callable[..., Daemon], tmp_path: Path, outside: Path
) -> None:
    """job, out and result planted as symlinks in a reply, before and while the job runs: the daemon writes
    only files it creates (out) and renames whole ones into place (job, result); the targets stay as they were."""
    daemon = fresh_daemon()
    gate = tmp_path / "gate"
    key = secrets.token_hex(32)
    reply = replies(daemon) / key[:32]
    reply.mkdir()  # the submitter's own folder, made before its line: the daemon takes it as it is
    for name in ("job", "out", "result"):
        (reply / name).symlink_to(outside / "victim")
    before = snapshot(outside)
    script = f"echo running; while [ ! -e {gate} ]; do sleep 0.05; done; echo done"

    daemon.write(f"HOSTPIPE_REPLY={key} docker run img sh -c '{script}'\n")
    wait_state(daemon, str(gate), {"running"})
    wait_for(lambda: b"running" in (reply / "out").read_bytes() if not (reply / "out").is_symlink() else False, 10)
    for name in ("job", "out", "result"):
        (reply / name).unlink()
        (reply / name).symlink_to(outside / "victim")
    (replies(daemon) / "alive").unlink(missing_ok=True)
    (replies(daemon) / "alive").symlink_to(outside / "victim")
    gate.touch()

    wait_for(lambda: (reply / "result").exists() and not (reply / "result").is_symlink(), 15)
    assert snapshot(outside) == before
    assert b"code=0" in (reply / "result").read_bytes()


def test_other_users_cannot_list_replies_but_reach_their_own_by_name(
    fresh_daemon: Callable[..., Daemon],
) -> None:
    """For pods that run as another user (not root on the host), replies/ cannot be listed: a reply is found
    only by its nonce, and the sh client run as that user gets its job's output and code."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the client as another user")
    top = Path(tempfile.mkdtemp(prefix="hp-other-"))
    try:
        top.chmod(0o755)
        daemon = fresh_daemon(DEFAULT_POLICY, "--folder-mode", "711", "--pipe-mode", "622", folder=top)
        as_nobody = {"user": 65534, "group": 65534, "cwd": "/"}
        client = Client("dash", daemon)
        result = subprocess.run(
            client.argv("--wait", "--", "docker", "run", "img", "sh", "-c", "echo mine; exit 9"),
            capture_output=True,
            text=True,
            env=client.env({"HOME": "/"}),
            timeout=60,
            check=False,
            **as_nobody,  # type: ignore[arg-type]
        )
        listing = subprocess.run(
            ["ls", str(replies(daemon))],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            **as_nobody,  # type: ignore[arg-type]
        )
    finally:
        shutil.rmtree(top, ignore_errors=True)

    assert result.returncode == 9, result.stderr
    assert "mine" in result.stdout
    assert listing.returncode != 0
    assert "Permission denied" in listing.stderr


def test_a_plain_echo_line_keeps_working_and_leaves_no_reply(fresh_daemon: Callable[..., Daemon]) -> None:
    """A pod that writes a plain line with echo, as before, gets its job run and recorded; no reply is made."""
    daemon = fresh_daemon()
    subprocess.run(["sh", "-c", f"echo 'docker run godlovedc/lolcow:latest' > {daemon.pipe}"], check=True, timeout=10)
    [record] = daemon.wait_records(1)

    assert (record["state"], record["line"]) == ("succeeded", "docker run godlovedc/lolcow:latest")
    time.sleep(1.2)  # a tick
    assert sorted(p.name for p in replies(daemon).iterdir()) == []
