"""Pod-controlled text reaches the operator's terminal with its control characters shown, never obeyed."""

from __future__ import annotations

import json

from hostpipe.cli.escape import escape
from tests.cli.terminal import on_terminal
from tests.conftest import Daemon, hostpipe

TITLE = "\x1b]0;owned\x07"
"""An OSC sequence that sets the terminal's title."""
FAKE = "\x1b[2K\rall jobs succeeded"
"""Erase the line and write over it."""


def test_escape_shows_c0_c1_del_and_bidi_overrides():
    """Every control character becomes a visible escape; ordinary text, accents included, is left alone."""
    assert escape("a\x1b[31mb\x07\x7f\x9b\u202ec\u2066") == "a\\x1b[31mb\\x07\\x7f\\x9b\\u202ec\\u2066"
    assert escape("café ünïcode") == "café ünïcode"
    assert escape("a\nb\tc", keep="\n") == "a\nb\\x09c"


def test_ps_show_and_check_escape_the_line_and_reason(make_daemon):
    """Lines and reasons holding an OSC title and a cursor rewrite are shown escaped by ps, show and check."""
    daemon: Daemon = make_daemon()
    ran = f"docker run test/x echo '{TITLE}{FAKE}'"
    refused = f"docker run '--x{TITLE}{FAKE}' test/x"
    daemon.write(f"HOSTPIPE_POD=ns/p {ran}\n")
    daemon.write(f"HOSTPIPE_POD=ns/p {refused}\n")
    first, second = daemon.wait_records(2)
    assert TITLE in first["line"] and TITLE in second["reason"]  # --json stays exact
    for args in (["ps"], ["show", str(first["id"])], ["show", str(second["id"])], ["check", ran, refused]):
        result = daemon.run(*args)
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\r" not in result.stdout, args
        assert "\\x1b]0;owned\\x07\\x1b[2K\\x0dall jobs succeeded" in result.stdout, args
    shown = json.loads(daemon.run("show", "--json", str(second["id"]), check=True).stdout)
    assert shown == second


def test_logs_are_escaped_on_a_terminal_and_exact_into_a_pipe(make_daemon):
    """A job that prints ESC sequences: a terminal sees escapes; a pipe gets the bytes as the job wrote them."""
    daemon: Daemon = make_daemon()
    daemon.write("docker run test/x printf '\\033]0;owned\\007ok\\033[2K\\n'\n")
    (record,) = daemon.wait_records(1)
    exact = hostpipe("logs", str(record["id"]), *daemon.args(), env=daemon.env).stdout
    assert "\x1b]0;owned\x07ok\x1b[2K\n" in exact
    code, seen = on_terminal(["logs", str(record["id"]), *daemon.args()], daemon.env)
    assert code == 0
    assert b"\x1b" not in seen and b"\x07" not in seen
    assert b"\\x1b]0;owned\\x07ok\\x1b[2K" in seen
