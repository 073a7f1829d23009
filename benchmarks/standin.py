"""A stand-in `docker` that records when each job starts and ends, so timings need no real container runtime.

The same executable serves every reader (hostpipe, the old shell loop, xargs), which makes their figures
comparable: each pays the same process start-up. It is a bash script because bash starts in a few
milliseconds and `$EPOCHREALTIME` gives a microsecond wall clock without forking `date`. The stamp file's path
is written into the script because hostpipe gives jobs a clean environment.

Command lines it understands (the image names match the benchmark policy's `bench/*`):

    docker run bench/true  ID          start and end at once
    docker run bench/sleep ID SECONDS  end after SECONDS
    docker run bench/hold  ID SECONDS  become `sleep SECONDS` (one process per job; no end stamp)

Options between `run` and the image (hostpipe adds `--cidfile=PATH` there to reach a job's container) are
skipped. Each stamp is one short line appended with O_APPEND (`>>`), written by a single write(2):
`start ID EPOCHREALTIME PID` or `end ID EPOCHREALTIME PID`.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

_SCRIPT = """\
#!{bash}
# Benchmark stand-in for a container runtime: records start and end stamps, then sleeps as asked.
stamps={stamps}
shift                                        # run
while [ "${{1#-}}" != "$1" ]; do shift; done   # options before the image
printf 'start %s %s %s\\n' "$2" "$EPOCHREALTIME" "$$" >> "$stamps"
case $1 in
    bench/sleep) sleep "$3" ;;
    bench/hold) exec sleep "$3" ;;
esac
printf 'end %s %s %s\\n' "$2" "$EPOCHREALTIME" "$$" >> "$stamps"
"""


def write_standin(bin_dir: Path, stamps: Path) -> Path:
    """Create `bin_dir/docker` appending stamps to `stamps`; return its path."""
    bash = shutil.which("bash")
    if bash is None:
        raise RuntimeError("bash is needed for the stand-in runtime and was not found on PATH")
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "docker"
    path.write_text(_SCRIPT.format(bash=bash, stamps=shlex.quote(str(stamps))))
    path.chmod(0o755)
    return path
