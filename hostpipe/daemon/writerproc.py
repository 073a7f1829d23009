"""Starting the store writer's process (`writer`): light enough to do before the daemon imports the rest.

The writer is a Python process of its own, and an interpreter takes a while to start. The daemon starts it
first thing, so the writer starts up while the daemon imports its policy and argument rules (the two take
about as long); `Store` then takes it over. Restarts of a writer that died go through here too.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path


def start_writer(db_path: Path) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """The writer's process for the records at `db_path`, and the daemon's end of their socketpair. Raises
    OSError."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # -P: the module is found on the installation's path only, never in the working folder (a HOME whose
        # pipe folder, `hostpipe/`, pods can write).
        process = subprocess.Popen(
            [sys.executable, "-P", "-m", "hostpipe.daemon.writer", str(child.fileno()), str(db_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(child.fileno(),),
            close_fds=True,
            cwd=db_path.parent,
        )
    except OSError:
        parent.close()
        raise
    finally:
        child.close()
    return process, parent
