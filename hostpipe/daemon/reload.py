"""Noticing that the policy file changed.

Editors replace files in many ways (write in place, write a temp file and rename, delete and recreate), so the
folder is watched and any event that touches the file's name triggers a reload; the reload itself decides
whether the new content is valid. Only those kinds of event are asked of the kernel (the watch's inotify
mask), so a busy folder (a pipe that pods write next to the policy) does not wake the watcher at every write.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer


class _Handler(FileSystemEventHandler):
    def __init__(self, name: str, callback: Callable[[], object]) -> None:
        self._name = name
        self._callback = callback

    def on_any_event(self, event: FileSystemEvent) -> None:
        # React once a writer has closed the file or a rename put it in place; "created" and "modified" fire
        # while the content is still being written.
        if event.event_type not in ("closed", "moved", "deleted"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(os.path.basename(os.fsdecode(p)) == self._name for p in paths if p):
            self._callback()


class PolicyWatcher:
    def __init__(self, path: Path, callback: Callable[[], object]) -> None:
        self._path = path
        self._observer = Observer()
        self._observer.daemon = True
        self._handler = _Handler(path.name, callback)

    def start(self) -> None:
        folder = self._path.parent
        if not folder.is_dir():
            return
        self._observer.schedule(
            self._handler,
            str(folder),
            recursive=False,
            event_filter=[FileClosedEvent, FileMovedEvent, FileDeletedEvent],
        )
        self._observer.start()

    def stop(self) -> None:
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join(timeout=2)
