"""The pipe-line grammar: what a line means, and what it refuses and why."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from hostpipe.core.grammar import MAX_LINE_BYTES, Expansions, parse_line
from hostpipe.core.request import LineRefused, Submit

HOME = "/home/alice"
USER = "alice"
EXPANSIONS = Expansions(home=HOME, user=USER)
PIPE_LINES = Path(__file__).parent.parent / "data" / "pipe-lines.txt"


def parse(line: str | bytes) -> Submit:
    return parse_line(line.encode() if isinstance(line, str) else line, EXPANSIONS)


def refusal(line: str | bytes) -> LineRefused:
    with pytest.raises(LineRefused) as caught:
        parse(line)
    return caught.value


def single_quoted(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


# --- lines that become a request ----------------------------------------------------------------------------

ACCEPTED = [
    # The simplest line, as in the README.
    ("docker run godlovedc/lolcow:latest", ["docker", "run", "godlovedc/lolcow:latest"]),
    # Runs of blanks and tabs separate words; they are never words themselves.
    ("docker \t run   ubuntu", ["docker", "run", "ubuntu"]),
    # A line from a CRLF file, or with stray blanks around it, means the same command.
    ("  docker run ubuntu \r", ["docker", "run", "ubuntu"]),
    ("docker run ubuntu\r\r", ["docker", "run", "ubuntu"]),
    # Single quotes keep everything literal, including $, \, `, globs and operators.
    ("sh -c 'echo $X | tr a-z A-Z > /o; `x` \\ *'", ["sh", "-c", "echo $X | tr a-z A-Z > /o; `x` \\ *"]),
    # Adjacent quoted and unquoted parts are one word.
    ("""a'b'"c"d\\ e""", ["ab" + "cd e"]),
    # An empty quoted word is still a word (an empty argument).
    ("printf '' \"\"", ["printf", "", ""]),
    # A backslash outside quotes makes the next character literal, whatever it is.
    (
        "echo \\$HOME \\; \\| \\& \\> \\( \\* \\~ \\# \\\\",
        ["echo", "$HOME", ";", "|", "&", ">", "(", "*", "~", "#", "\\"],
    ),
    # Inside double quotes a backslash escapes only $ ` " \ ; before anything else it stays.
    ('echo "\\$ \\` \\" \\\\ \\n \\a"', ["echo", '$ ` " \\ \\n \\a']),
    # Double quotes keep operators, globs, ~ and # literal.
    ('echo "a | b; c & d > e ( * ? [ ~ # {x,y}"', ["echo", "a | b; c & d > e ( * ? [ ~ # {x,y}"]),
    # A backslash-newline is a line continuation: removed outside quotes and inside double quotes.
    ('echo a\\\nb "c\\\nd" \\\n e', ["echo", "ab", "cd", "e"]),
    # Continuations are removed before words are read, so they may split an expansion's name.
    ('echo "$\\\nHOME" $\\\nUSER', ["echo", HOME, USER]),
    # A continuation that brings a # to the start of a word starts a comment there.
    ("echo a \\\n# note", ["echo", "a"]),
    # Inside single quotes a backslash-newline is kept as written.
    ("echo 'a\\\nb'", ["echo", "a\\\nb"]),
    # A trailing escaped blank belongs to the last word; stripping the line must not cut it off.
    ("echo a\\ ", ["echo", "a "]),
    # A newline inside quotes is part of the word, as in a shell.
    ("echo 'a\nb'", ["echo", "a\nb"]),
    # `#` at the start of a word begins a comment; inside a word it is an ordinary character.
    ("docker run ubuntu # started by pod x; see > notes", ["docker", "run", "ubuntu"]),
    ("docker run ubuntu echo a#b", ["docker", "run", "ubuntu", "echo", "a#b"]),
    # ~ and ~/... at the start of an unquoted word are the daemon user's home.
    ("apptainer run ~/ersap_v0.1.sif", ["apptainer", "run", f"{HOME}/ersap_v0.1.sif"]),
    ("ls ~", ["ls", HOME]),
    # A quoted ~, or one in the middle of a word (not after = or :), is an ordinary character.
    ("ls '~' \"~/x\" a~b x.txt~", ["ls", "~", "~/x", "a~b", "x.txt~"]),
    # $HOME, ${HOME}, $USER and ${USER} expand unquoted and inside double quotes, as one word each.
    (
        'echo $HOME ${HOME}/x "$USER-${USER}" a$USER',
        ["echo", HOME, f"{HOME}/x", f"{USER}-{USER}", f"a{USER}"],
    ),
    # Inside single quotes nothing expands.
    ("echo '$HOME' '~'", ["echo", "$HOME", "~"]),
    # A $ before something that cannot start an expansion is an ordinary character.
    ('echo $ a$ "$" "a$" $/ $.', ["echo", "$", "a$", "$", "a$", "$/", "$."]),
    # Assignment-like words after the program are ordinary arguments (docker's own -e syntax).
    (
        "docker run -e FOO=bar -e HOSTPIPE_POD=x ubuntu",
        ["docker", "run", "-e", "FOO=bar", "-e", "HOSTPIPE_POD=x", "ubuntu"],
    ),
    # A quoted name is not an assignment, so this word is the program, returned as written.
    ('"HOSTPIPE_POD"=x docker', ["HOSTPIPE_POD=x", "docker"]),
    # Reserved words only matter in command position; as arguments they are plain words.
    ("docker run ubuntu if then time !", ["docker", "run", "ubuntu", "if", "then", "time", "!"]),
    # A quoted reserved word is not a reserved word.
    ("'if' x", ["if", "x"]),
    # Braces without a comma or a sequence are not brace expansion (docker's --format templates).
    ("docker ps --format {{.ID}} {} a{b}c", ["docker", "ps", "--format", "{{.ID}}", "{}", "a{b}c"]),
    # Quoted braces and commas are literal.
    ("echo '{a,b}' \"{1..3}\" {a\\,b}", ["echo", "{a,b}", "{1..3}", "{a,b}"]),
    # A ] alone and a ! inside words are ordinary characters.
    ("echo ] a!b", ["echo", "]", "a!b"]),
    # Vertical tab and form feed are word characters between words, as in a shell.
    ("echo a\x0bb", ["echo", "a\x0bb"]),
    # Non-ASCII text is an ordinary word.
    ("echo héllo 日本", ["echo", "héllo", "日本"]),
    # The program word is returned as written; the policy resolves it.
    ("/usr/bin/docker run x", ["/usr/bin/docker", "run", "x"]),
]


@pytest.mark.parametrize(("line", "argv"), ACCEPTED)
def test_reads_plain_lines_with_posix_quoting(line: str, argv: list[str]) -> None:
    """A plain line becomes the argv a POSIX shell would build from it, without running a shell."""
    request = parse(line)
    assert request.argv == tuple(argv)
    assert (request.pod, request.id, request.timeout) == (None, None, None)


SHELLS = [shell for shell in ("bash", "dash") if shutil.which(shell)]


def shell_argv(shell: str, line: str) -> tuple[str, ...]:
    """The words a real shell makes of `line`, read as arguments to `set --` (so no word is a command)."""
    script = f"set -- {line}\nprintf '%s\\0' \"$@\""
    environment = {"HOME": HOME, "USER": USER, "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    done = subprocess.run([shell, "-c", script], env=environment, capture_output=True, timeout=10, check=True)
    return tuple(done.stdout.decode().split("\0")[:-1])


@pytest.mark.skipif(not SHELLS, reason="needs bash or dash to compare against")
@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(("line", "argv"), [case for case in ACCEPTED if "\r" not in case[0]])
def test_accepted_lines_mean_what_a_real_shell_makes_of_them(shell: str, line: str, argv: list[str]) -> None:
    """bash and dash build the same words from every accepted line (CR stripping is hostpipe's own addition)."""
    assert shell_argv(shell, line) == tuple(argv)


FIELDS = [
    # All three reserved assignments fill the request and never reach argv.
    (
        "HOSTPIPE_POD=ns/pod-1 HOSTPIPE_ID=job.1 HOSTPIPE_TIMEOUT=30s docker run x",
        ("ns/pod-1", "job.1", 30.0),
    ),
    # In any order; a number without a unit is seconds.
    ("HOSTPIPE_TIMEOUT=90 HOSTPIPE_POD=a/b docker run x", ("a/b", None, 90.0)),
    # Values may be quoted.
    ("HOSTPIPE_POD='ns/p' HOSTPIPE_ID=\"j\" HOSTPIPE_TIMEOUT='1h30m' docker run x", ("ns/p", "j", 5400.0)),
    # Values may use the allowed expansions.
    ("HOSTPIPE_ID=$USER-run docker run x", (None, f"{USER}-run", None)),
    # A number of seconds may have a fraction.
    ("HOSTPIPE_TIMEOUT=0.5 docker run x", (None, None, 0.5)),
]


@pytest.mark.parametrize(("line", "fields"), FIELDS)
def test_reads_reserved_assignments_into_the_request(line: str, fields: tuple[object, ...]) -> None:
    """HOSTPIPE_POD, HOSTPIPE_ID and HOSTPIPE_TIMEOUT before the program fill pod, id and timeout."""
    request = parse(line)
    assert request.argv == ("docker", "run", "x")
    assert (request.pod, request.id, request.timeout) == fields


JSON_ACCEPTED = [
    # The minimal object.
    ('{"argv": ["docker", "run", "x"]}', Submit(argv=("docker", "run", "x"))),
    # Every field; a timeout may be a number of seconds.
    (
        '{"op": "submit", "argv": ["docker"], "pod": "ns/p", "id": "j1", "timeout": 30}',
        Submit(argv=("docker",), pod="ns/p", id="j1", timeout=30.0),
    ),
    # ... or a duration string.
    ('{"argv": ["docker"], "timeout": "2h"}', Submit(argv=("docker",), timeout=7200.0)),
    # null for an optional field means it is not given, as JSON encoders write None.
    ('{"argv": ["docker"], "pod": null, "id": null, "timeout": null}', Submit(argv=("docker",))),
    # Nothing in JSON is expanded or unquoted: argv is exact, shell characters included.
    (
        '{"argv": ["echo", "~", "$HOME", "a b", "*", "{a,b}", "x;y", "", "\\n"]}',
        Submit(argv=("echo", "~", "$HOME", "a b", "*", "{a,b}", "x;y", "", "\n")),
    ),
    # Blanks around the object and a trailing CR are not part of it.
    ('  {"argv": ["a"]}  \r', Submit(argv=("a",))),
]


@pytest.mark.parametrize(("line", "request_"), JSON_ACCEPTED)
def test_reads_json_lines_exactly(line: str, request_: Submit) -> None:
    """A line starting with { is one JSON object whose argv is taken exactly as given."""
    assert parse(line) == request_


# --- lines that are refused ---------------------------------------------------------------------------------

REFUSED = [
    # Nothing to run.
    ("", "empty-line"),
    (" \t \r", "empty-line"),
    ("# just a comment", "empty-line"),
    ("HOSTPIPE_POD=ns/p", "no-command"),
    ("HOSTPIPE_POD=ns/p HOSTPIPE_ID=j # later", "no-command"),
    # Quotes that never close.
    ("docker run 'x", "unterminated-quote"),
    ('docker run "x', "unterminated-quote"),
    ('docker run "x\\"', "unterminated-quote"),
    ("docker run x\\", "unterminated-quote"),
    # Parameter expansion other than HOME and USER.
    ("docker run $IMAGE", "expansion"),
    ('docker run "${IMAGE}"', "expansion"),
    ("docker run ${IMAGE:-ubuntu}", "expansion"),
    ("docker run ${#HOME}", "expansion"),
    ("docker run ${HOME", "expansion"),
    ("docker run $HOMEDIR", "expansion"),
    ("docker run x $1", "expansion"),
    ("docker run x $$", "expansion"),
    ("docker run x $?", "expansion"),
    ("docker run x $!", "expansion"),
    ("docker run x $@ $*", "expansion"),
    # Tilde forms that are not this host's home, and tildes whose meaning differs between shells.
    ("ls ~root/x", "expansion"),
    ("ls ~+", "expansion"),
    ("ls ~-", "expansion"),
    ("docker run -e DATA=~/x ubuntu", "expansion"),
    ("docker run -v /a:~/b ubuntu", "expansion"),
    # Command substitution in every spelling.
    ("docker run $(cat image)", "command-substitution"),
    ('docker run "$(cat image)"', "command-substitution"),
    ("docker run `cat image`", "command-substitution"),
    ('docker run "`cat image`"', "command-substitution"),
    ("docker run x $((1+2))", "command-substitution"),
    ("diff <(ls a) >(ls b)", "command-substitution"),
    # Background jobs.
    ("docker run x &", "background"),
    ("docker run x& ", "background"),
    ("docker run x & docker run y", "background"),
    # Lists of commands.
    ("docker run x; docker run y", "command-list"),
    ("docker run x && docker run y", "command-list"),
    ("docker run x || docker run y", "command-list"),
    ("docker run x ;; y", "command-list"),
    ("docker run x\ndocker run y", "command-list"),
    # A comment ends at a newline, so a command after it would run too.
    ("docker run x # note\nrm -rf ~", "command-list"),
    ("docker run x # note \\\nrm -rf ~", "command-list"),
    # Pipelines.
    ("docker run x | grep y", "pipeline"),
    ("docker run x |& grep y", "pipeline"),
    # Redirections in every spelling.
    ("docker run x > out", "redirection"),
    ("docker run x >> out", "redirection"),
    ("docker run x < in", "redirection"),
    ("docker run x 2> err", "redirection"),
    ("docker run x 2>&1", "redirection"),
    ("docker run x &> all", "redirection"),
    ("docker run x >& all", "redirection"),
    ("docker run x << EOF", "redirection"),
    ("docker run x <<< word", "redirection"),
    ("docker run x>out", "redirection"),
    # Subshells.
    ("(docker run x)", "subshell"),
    ("docker run x )", "subshell"),
    ("(( 1 + 2 ))", "subshell"),
    # Unquoted glob characters a shell would match against the host's files.
    ("docker run x *.txt", "glob"),
    ("docker run x file?", "glob"),
    ("docker run x [ab]", "glob"),
    ("[ -f x ]", "glob"),
    # Brace expansion, which bash turns into several words.
    ("docker run x {a,b}", "brace-expansion"),
    ("docker run x pre{1..3}post", "brace-expansion"),
    ("docker run x {a..z}", "brace-expansion"),
    ("docker run x {a,}", "brace-expansion"),
    # Shell syntax: keywords in command position, bare braces, ! as the first word, bash-only quoting.
    ("if true", "shell-syntax"),
    ("for x in a b", "shell-syntax"),
    ("while true", "shell-syntax"),
    ("case x in", "shell-syntax"),
    ("function f", "shell-syntax"),
    ("time docker run x", "shell-syntax"),
    ("! docker run x", "shell-syntax"),
    ("[[ -f x ]]", "shell-syntax"),
    ("HOSTPIPE_POD=ns/p { docker run x", "shell-syntax"),
    ("docker run x }", "shell-syntax"),
    ("echo $'a\\tb'", "shell-syntax"),
    ('echo $"hello"', "shell-syntax"),
    ("HOSTPIPE_POD+=x docker run x", "shell-syntax"),
    # Environment assignments before the program, and export.
    ("FOO=bar docker run x", "env-assignment"),
    ("FOO= docker run x", "env-assignment"),
    ("hostpipe_pod=ns/p docker run x", "env-assignment"),
    ("A+=b docker run x", "env-assignment"),
    ("ARR=(a b) docker run x", "env-assignment"),
    ("HOSTPIPE_POD=ns/p FOO=bar docker run x", "env-assignment"),
    ("export FOO=bar", "env-assignment"),
    ("'export' FOO=bar", "env-assignment"),
    # Reserved fields given twice, or with values that cannot be used.
    ("HOSTPIPE_POD=a/b HOSTPIPE_POD=a/b docker", "duplicate-field"),
    ("HOSTPIPE_POD=Bad/Name docker", "bad-pod"),
    ("HOSTPIPE_POD=nonamespace docker", "bad-pod"),
    ("HOSTPIPE_POD= docker", "bad-pod"),
    ("HOSTPIPE_POD=~ docker", "bad-pod"),
    ("HOSTPIPE_ID=../x docker", "bad-id"),
    ("HOSTPIPE_ID='a b' docker", "bad-id"),
    ("HOSTPIPE_ID=* docker", "bad-id"),
    ("HOSTPIPE_TIMEOUT=0 docker", "bad-timeout"),
    ("HOSTPIPE_TIMEOUT=0s docker", "bad-timeout"),
    ("HOSTPIPE_TIMEOUT=-5 docker", "bad-timeout"),
    ("HOSTPIPE_TIMEOUT=soon docker", "bad-timeout"),
    ("HOSTPIPE_TIMEOUT=inf docker", "bad-timeout"),
    ("HOSTPIPE_TIMEOUT=1e400 docker", "bad-timeout"),
    # Bytes that cannot become an argument.
    (b"docker run \0x", "nul-byte"),
    (b"docker run \xff", "not-utf8"),
    (b"docker run \xed\xa0\x80", "not-utf8"),
    (b"docker run \xc3", "not-utf8"),
    # JSON that is not one well-formed request object.
    ("{", "bad-json"),
    ('{"argv": ["a"]} trailing', "bad-json"),
    ("{ docker run x; }", "bad-json"),
    ('{"argv": ["a"], "timeout": NaN}', "bad-json"),
    ('{"argv": ["a"], "timeout": Infinity}', "bad-json"),
    ('{"argv": [' + "[" * 2000 + "]" * 2000 + "]}", "bad-json"),
    ('["docker", "run", "x"]', "bad-json"),
    ('{"argv": ["a"], "argv": ["b"]}', "duplicate-field"),
    ('{"argv": ["a"], "env": {"A": "b"}}', "bad-field"),
    ('{"argv": ["a"], "op": "cancel"}', "bad-field"),
    ('{"argv": ["a"], "op": 1}', "bad-field"),
    ('{"pod": "ns/p"}', "bad-field"),
    ('{"argv": "docker run x"}', "bad-field"),
    ('{"argv": {"0": "docker"}}', "bad-field"),
    ('{"argv": ["docker", 1]}', "bad-field"),
    ('{"argv": ["docker", null]}', "bad-field"),
    ('{"argv": ["docker", "\\ud800"]}', "bad-field"),
    ('{"argv": []}', "no-command"),
    ('{"argv": ["docker", "a\\u0000b"]}', "nul-byte"),
    ('{"argv": ["a"], "pod": "Bad/Name"}', "bad-pod"),
    ('{"argv": ["a"], "pod": 5}', "bad-pod"),
    ('{"argv": ["a"], "id": ".."}', "bad-id"),
    ('{"argv": ["a"], "id": 7}', "bad-id"),
    ('{"argv": ["a"], "timeout": 0}', "bad-timeout"),
    ('{"argv": ["a"], "timeout": -1}', "bad-timeout"),
    ('{"argv": ["a"], "timeout": true}', "bad-timeout"),
    ('{"argv": ["a"], "timeout": "soon"}', "bad-timeout"),
    ('{"argv": ["a"], "timeout": [30]}', "bad-timeout"),
    ('{"argv": ["a"], "timeout": 1e400}', "bad-timeout"),
    ('{"argv": ["a"], "timeout": ' + "9" * 400 + "}", "bad-timeout"),
]


def short_id(value: object) -> str | None:
    """Test ids stay readable for the longest lines in the tables."""
    text = value.decode(errors="backslashreplace") if isinstance(value, bytes) else value
    return text[:40] + "..." if isinstance(text, str) and len(text) > 43 else None


@pytest.mark.parametrize(("line", "rule"), REFUSED, ids=short_id)
def test_refuses_what_a_shell_would_act_on_with_the_rule_it_broke(line: str | bytes, rule: str) -> None:
    """Each line is refused under its rule, with one sentence that ends the reason."""
    refused = refusal(line)
    assert refused.rule == rule, refused.reason
    assert refused.reason.endswith(".")
    assert ". " not in refused.reason, "a reason is one sentence"


ADVICE = [
    # Parameter expansion points at the runtime's own env option and at the policy.
    ("docker run $IMAGE", ["'$IMAGE'", "docker -e NAME=value", "apptainer --env NAME=value", "pass_env"]),
    # $! gets the job record instead of a pid file.
    ("docker run x $!", ["hostpipe ps --json"]),
    # Background: drop the & and read the job record.
    ("docker run x &", ["drop the '&'", "hostpipe ps"]),
    # Lists: one command per line.
    ("a && b", ["'&&'", "each command as its own line"]),
    # Pipelines: run them inside the container.
    ("a | b", ["inside the container"]),
    # Redirection: the job's log already holds the output.
    ("a 2>&1", ["'>&'", "hostpipe logs JOB", "drop the redirection"]),
    # Subshells: drop the parentheses and setsid.
    ("(a)", ["drop the parentheses", "setsid"]),
    # Globs: quote the word, shown as written.
    ("ls *.txt", ["'*'", "'*.txt'", "quote the word"]),
    # Command substitution: run it in the container.
    ("ls $(pwd)", ["$(...)", "inside the container"]),
    # Environment: the assignment's name, and the same advice as for expansions.
    ("FOO=1 docker", ["FOO=", "docker -e NAME=value", "pass_env"]),
    ("hostpipe_pod=ns/p docker", ["did you mean HOSTPIPE_POD?"]),
    ("export FOO=1", ["export", "docker -e NAME=value"]),
    # Quotes: where the open quote is, counted in the line as written.
    ("  docker run 'x", ["column 14"]),
    ('docker "x', ["column 8"]),
    # Bytes: the offset of the bad byte, and the length limit.
    (b"ab\xffc", ["byte offset 2"]),
    (b"abc\0", ["byte offset 3"]),
    ("x" * MAX_LINE_BYTES, [f"{MAX_LINE_BYTES} bytes", f"at most {MAX_LINE_BYTES - 1} bytes"]),
    # Reserved fields: the value as written.
    ("HOSTPIPE_POD=Bad/Name docker", ["HOSTPIPE_POD='Bad/Name'", "namespace/name"]),
    ("HOSTPIPE_TIMEOUT=0 docker", ["HOSTPIPE_TIMEOUT='0'", "greater than 0"]),
    ("HOSTPIPE_ID=a HOSTPIPE_ID=b docker", ["HOSTPIPE_ID is given twice"]),
    # JSON: the key or element at fault.
    ('{"argv": ["a"], "colour": 1}', ["'colour'", "argv, pod, id, timeout and op"]),
    ('{"argv": ["a"], "env": {}}', ["'env'", "pass_env"]),
    ('{"argv": ["a", 1]}', ["argv[1]", "number"]),
    ('{"argv": ["a"], "argv": ["b"]}', ["'argv' is given twice"]),
    ('{"argv": ["a"], "op": "cancel"}', ["hostpipe cancel"]),
    ('{"argv": [1', ["column"]),
]


@pytest.mark.parametrize(("line", "phrases"), ADVICE, ids=short_id)
def test_refusals_say_what_is_wrong_and_what_to_do(line: str | bytes, phrases: list[str]) -> None:
    """A reason names the offending part and the way to do it instead."""
    reason = refusal(line).reason
    for phrase in phrases:
        assert phrase in reason


def test_accepts_a_line_of_exactly_4095_bytes_and_refuses_one_more() -> None:
    """The limit is PIPE_BUF with the newline, so 4095 bytes of content pass and 4096 do not."""
    prefix = "docker run x "
    longest = prefix + "a" * (MAX_LINE_BYTES - 1 - len(prefix))
    assert len(longest.encode()) == MAX_LINE_BYTES - 1
    assert parse(longest).argv[-1] == "a" * (MAX_LINE_BYTES - 1 - len(prefix))
    assert refusal(longest + "a").rule == "line-too-long"
    # Counted in bytes, not characters: two-byte characters reach the limit at half the count.
    assert refusal(prefix + "é" * (MAX_LINE_BYTES // 2)).rule == "line-too-long"


FILED_UNDER = [
    # A refusal after the pod was read is filed under that pod, and under the id when there is one.
    ("HOSTPIPE_POD=ns/p docker run x | y", "pipeline", "ns/p", None),
    ("HOSTPIPE_POD=ns/p HOSTPIPE_ID=j docker run x > out", "redirection", "ns/p", "j"),
    ("HOSTPIPE_POD=ns/p HOSTPIPE_TIMEOUT=never docker", "bad-timeout", "ns/p", None),
    ("HOSTPIPE_POD=ns/p HOSTPIPE_ID=.. docker", "bad-id", "ns/p", None),
    ("HOSTPIPE_POD=ns/p HOSTPIPE_POD=ns/q docker", "duplicate-field", "ns/p", None),
    ("HOSTPIPE_ID=j FOO=1 docker", "env-assignment", None, "j"),
    ("HOSTPIPE_POD=ns/p", "no-command", "ns/p", None),
    # A pod that is not valid is never used to file a refusal.
    ("HOSTPIPE_POD=NS/P docker", "bad-pod", None, None),
    # The JSON form files under a valid pod and id, whatever else is wrong.
    ('{"argv": [], "pod": "ns/p", "id": "j"}', "no-command", "ns/p", "j"),
    ('{"argv": ["a"], "pod": "ns/p", "timeout": "never"}', "bad-timeout", "ns/p", None),
    ('{"argv": ["a"], "pod": "ns/p", "extra": 1}', "bad-field", "ns/p", None),
    ('{"argv": ["a"], "pod": "ns/p", "timeout": 1, "timeout": 2}', "duplicate-field", "ns/p", None),
    # ... but not under an invalid pod, nor under a pod given twice (which one would it be?).
    ('{"argv": ["a"], "pod": "NS/P", "id": "j"}', "bad-pod", None, "j"),
    ('{"argv": ["a"], "pod": "ns/p", "pod": "ns/q"}', "duplicate-field", None, None),
    # A line that is not readable at all names no pod.
    (b"HOSTPIPE_POD=ns/p \xff", "not-utf8", None, None),
]


@pytest.mark.parametrize(("line", "rule", "pod", "client_id"), FILED_UNDER)
def test_files_refusals_under_the_pod_named_before_the_fault(
    line: str | bytes, rule: str, pod: str | None, client_id: str | None
) -> None:
    """LineRefused carries the pod and id the line gave validly, so the refusal reaches that pod's records."""
    refused = refusal(line)
    assert (refused.rule, refused.pod, refused.client_id) == (rule, pod, client_id)


def test_expansions_come_from_the_values_given() -> None:
    """~, $HOME and $USER take whatever the daemon passes, inserted as one word even with blanks or globs."""
    odd = Expansions(home="/srv/my home/*", user="a b")
    request = parse_line(b"ls ~ ~/x $HOME ${USER}x", odd)
    assert request.argv == ("ls", "/srv/my home/*", "/srv/my home/*/x", "/srv/my home/*", "a bx")


# --- the lines pods really wrote ----------------------------------------------------------------------------

PIPE_LINES_EXPECTED: dict[str, list[str] | str] = {
    # Table 3 of the README: must parse unchanged.
    "docker run godlovedc/lolcow:latest": ["docker", "run", "godlovedc/lolcow:latest"],
    "apptainer run docker://sylabsio/lolcow:latest": ["apptainer", "run", "docker://sylabsio/lolcow:latest"],
    "shifter --image=godlovedc/lolcow:latest --entrypoint": [
        "shifter",
        "--image=godlovedc/lolcow:latest",
        "--entrypoint",
    ],
    # Other plain runtime lines.
    "docker run ubuntu ls": ["docker", "run", "ubuntu", "ls"],
    "docker run stress:v1.0": ["docker", "run", "stress:v1.0"],
    "apptainer exec lolcow_latest.sif cowsay moo": [
        "apptainer",
        "exec",
        "lolcow_latest.sif",
        "cowsay",
        "moo",
    ],
    "apptainer run ~/ersap_v0.1.sif -- /ersap/run-pipeline.sh": [
        "apptainer",
        "run",
        f"{HOME}/ersap_v0.1.sif",
        "--",
        "/ersap/run-pipeline.sh",
    ],
    "shifter --image=docker:jlabtsai/stress:p1 --entrypoint": [
        "shifter",
        "--image=docker:jlabtsai/stress:p1",
        "--entrypoint",
    ],
    "shifter --image=gurjyan/ersap:v0.2 -- /ersap/run-pipeline.sh": [
        "shifter",
        "--image=gurjyan/ersap:v0.2",
        "--",
        "/ersap/run-pipeline.sh",
    ],
    # Lines with host access: the grammar reads them; whether they may run is the policy's decision.
    "docker run -d --rm --name vd-ersap --network=host -e ERSAP_USER_DATA=/data "
    "--entrypoint=/ersap/run-pipeline.sh gurjyan/ersap:v0.4": [
        "docker",
        "run",
        "-d",
        "--rm",
        "--name",
        "vd-ersap",
        "--network=host",
        "-e",
        "ERSAP_USER_DATA=/data",
        "--entrypoint=/ersap/run-pipeline.sh",
        "gurjyan/ersap:v0.4",
    ],
    "docker run -d --rm --net=host -v /proc:/host_proc jlabtsai/process-exporter:v1.0": [
        "docker",
        "run",
        "-d",
        "--rm",
        "--net=host",
        "-v",
        "/proc:/host_proc",
        "jlabtsai/process-exporter:v1.0",
    ],
    "apptainer run --bind /proc:/host_proc ~/process-exporter_pgid-go.sif": [
        "apptainer",
        "run",
        "--bind",
        "/proc:/host_proc",
        f"{HOME}/process-exporter_pgid-go.sif",
    ],
    "apptainer exec --env SLURM_CONF=$HOME/slurm.conf --bind "
    "/run/munge/munge.socket.2:/run/munge/munge.socket.2 fw-agent_main.sif bash": [
        "apptainer",
        "exec",
        "--env",
        f"SLURM_CONF={HOME}/slurm.conf",
        "--bind",
        "/run/munge/munge.socket.2:/run/munge/munge.socket.2",
        "fw-agent_main.sif",
        "bash",
    ],
    "shifter --image=jlabtsai/process-exporter:v1.0 -V /proc:/host_proc --entrypoint": [
        "shifter",
        "--image=jlabtsai/process-exporter:v1.0",
        "-V",
        "/proc:/host_proc",
        "--entrypoint",
    ],
    "podman run --name ersap -d --rm --network=host -e ERSAP_HOME=/ersap --entrypoint=/ersap/run.sh "
    "gurjyan/ersap:v0.4": [
        "podman",
        "run",
        "--name",
        "ersap",
        "-d",
        "--rm",
        "--network=host",
        "-e",
        "ERSAP_HOME=/ersap",
        "--entrypoint=/ersap/run.sh",
        "gurjyan/ersap:v0.4",
    ],
    # Shell-chained lines: each is refused at the first thing a shell would do.
    "docker run ubuntu ls > ~/out.txt": "redirection",
    "apptainer exec lolcow_latest.sif cowsay moo > $HOME/out.txt && ls -l $HOME/out.txt": "redirection",
    "(setsid shifter --image=docker:jlabtsai/stress:p64 --entrypoint& echo $! > ~/pid.out)": "subshell",
    "(setsid shifter --image=docker:gurjyan/ersap:v0.4 -- /bin/bash /ersap/run-pipeline-8.sh & echo $! > "
    "$HOME/sid.out) && (ssh -NfR 2221:localhost:2221 jiriaf2301)": "subshell",
    "export PROCESS_EXPORTER_PORT=1912 && setsid shifter --image=jlabtsai/process-exporter:v1.0 -V "
    "/proc:/host_proc --entrypoint &": "env-assignment",
    # The tail of a chained line is one plain command on its own; the policy refuses ls, not the grammar.
    "ls -l .": ["ls", "-l", "."],
}


def pipe_lines() -> list[str]:
    lines = PIPE_LINES.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_every_recorded_pipe_line_has_an_expectation() -> None:
    """The data file and the expectations list the same lines, so a line added to either is never skipped."""
    assert sorted(pipe_lines()) == sorted(PIPE_LINES_EXPECTED)


@pytest.mark.parametrize("line", pipe_lines())
def test_reads_or_refuses_every_line_pods_wrote(line: str) -> None:
    """Plain runtime lines parse to the argv as written; shell-chained lines are refused under their rule."""
    expected = PIPE_LINES_EXPECTED[line]
    if isinstance(expected, str):
        assert refusal(line).rule == expected
    else:
        assert parse(line).argv == tuple(expected)


# --- properties ---------------------------------------------------------------------------------------------

SHELLISH = st.text(alphabet=st.sampled_from(list(" \t\r\n'\"\\$`{}()[]*?~=:;&|<>#!,.-/aHOMEUSR_019é\0")))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=6,
)
JSON_OBJECTS = st.dictionaries(
    st.sampled_from(["argv", "pod", "id", "timeout", "op", "env"]), JSON_VALUES, max_size=5
).map(json.dumps)


@settings(max_examples=200)
@given(
    st.one_of(
        st.binary(max_size=200),
        SHELLISH.map(str.encode),
        st.text(max_size=200).map(str.encode),
        JSON_OBJECTS.map(str.encode),
    )
)
def test_any_input_is_either_a_request_or_a_line_refusal(raw: bytes) -> None:
    """Whatever bytes arrive, parse_line returns a Submit or raises LineRefused, never anything else."""
    try:
        request = parse_line(raw, EXPANSIONS)
    except LineRefused as refused:
        assert refused.rule
        assert refused.reason.endswith(".")
        return
    assert isinstance(request, Submit)
    assert request.argv


FRAGMENTS = [
    *["a", "b", "-x", "x.y", "é", " ", " ", "\t", "/", "=", ":", ",", "..", "!", "{", "}", "#"],
    *["'", "'", '"', '"', "\\", "\\", "\n", "\\\n", "$", "$HOME", "${HOME}", "$USER", "${USER}", "~", "~/"],
    *["*", "(", ";", "&", "|", ">", "`", "$X", "${X}", "$(", "$'"],
]


@pytest.mark.skipif(not SHELLS, reason="needs bash or dash to compare against")
@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=14).map(lambda parts: "".join(parts).strip()))
def test_any_accepted_line_gives_the_words_a_real_shell_gives(line: str) -> None:
    """Whenever the grammar accepts a line (without blanks around it), bash and dash read the same argv from it."""
    try:
        argv = parse(line).argv
    except LineRefused:
        return
    for shell in SHELLS:
        assert shell_argv(shell, line) == argv, shell


WORDS = st.lists(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\0\r\n"), min_size=1, max_size=20),
    min_size=1,
    max_size=8,
)
PODS = st.none() | st.sampled_from(["ns/p", "default/job-1", "a.b/c-d.e"])
IDS = st.none() | st.sampled_from(["j", "run.1", "A_b-9"])
TIMEOUTS = st.none() | st.integers(min_value=1, max_value=10**6)


def plain_line(argv: list[str], pod: str | None, client_id: str | None, timeout: int | None, blank: str) -> str:
    prefix = []
    if pod is not None:
        prefix.append(f"HOSTPIPE_POD={pod}")
    if client_id is not None:
        prefix.append(f"HOSTPIPE_ID={single_quoted(client_id)}")
    if timeout is not None:
        prefix.append(f"HOSTPIPE_TIMEOUT={timeout}s")
    return blank.join(prefix + [single_quoted(word) for word in argv])


@settings(max_examples=300)
@given(WORDS, st.sampled_from([" ", "\t", " \t  "]))
@example(["export", "A=1"], " ")
@example(["HOSTPIPE_POD=ns/p", "if", "{", "~", "$HOME", "*", "#", "it's"], " ")
def test_single_quoted_words_read_back_exactly(argv: list[str], blank: str) -> None:
    """Any argv with every word single-quoted reads back exactly (only export as the program is refused)."""
    line = plain_line(argv, None, None, None, blank).encode()
    assume(len(line) < MAX_LINE_BYTES)
    if argv[0] == "export":
        assert refusal(line).rule == "env-assignment"
    else:
        assert parse_line(line, EXPANSIONS).argv == tuple(argv)


@settings(max_examples=150)
@given(WORDS, PODS, IDS, TIMEOUTS)
def test_json_form_gives_the_same_request_as_the_plain_form(
    argv: list[str], pod: str | None, client_id: str | None, timeout: int | None
) -> None:
    """A JSON object and a quoted plain line with the same argv, pod, id and timeout are the same request."""
    plain = plain_line(argv, pod, client_id, timeout, " ").encode()
    document = json.dumps({"argv": argv, "pod": pod, "id": client_id, "timeout": timeout}).encode()
    assume(max(len(plain), len(document)) < MAX_LINE_BYTES and argv[0] != "export")
    from_json = parse_line(document, EXPANSIONS)
    assert from_json == parse_line(plain, EXPANSIONS)
    assert from_json == Submit(argv=tuple(argv), pod=pod, id=client_id, timeout=timeout)
