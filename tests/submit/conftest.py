"""Real `hostpipe serve` daemons and the real clients: `hostpipe submit` (Python) and the published sh client
run by dash and by busybox sh, all through the real FIFO and the real reply folder."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEFAULT_POLICY, Daemon

from .support import CLIENTS, SHELLS, Client, client_env, start_daemon


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon for a module's tests that only submit their own jobs and read their own replies."""
    daemon = start_daemon(tmp_path_factory.mktemp("submit"), client_env())
    yield daemon
    daemon.kill_all()


@pytest.fixture
def fresh_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """A daemon of a test's own, for tests that change the folder, the policy or the daemon itself."""
    started: list[Daemon] = []

    def make(policy: str = DEFAULT_POLICY, *extra: str, folder: Path | None = None) -> Daemon:
        daemon = start_daemon(folder or tmp_path / f"d{len(started)}", client_env(), policy, *extra)
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        daemon.kill_all()


def client_kinds() -> list[Any]:
    kinds: list[Any] = []
    for kind in CLIENTS:
        missing = kind != "python" and shutil.which(SHELLS[kind][0]) is None
        kinds.append(pytest.param(kind, marks=pytest.mark.skip(reason=f"{kind} is not installed")) if missing else kind)
    return kinds


@pytest.fixture(params=client_kinds())
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(kind: str, shared_daemon: Daemon) -> Client:
    return Client(kind, shared_daemon)
