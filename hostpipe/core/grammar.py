"""One pipe line becomes one `Submit`, read with a POSIX shell's quoting but without a shell.

Pods have always written shell command lines into the pipe (`echo 'docker run IMAGE' > ~/hostpipe/vk-cmd`), so
a plain line keeps the quoting its authors know: single quotes, double quotes, backslashes, adjacent parts
joined into one word, `#` comments. Whatever else a shell would *do* with the line (expansions other than `~`,
`$HOME` and `$USER`, command substitution, globbing, lists, pipelines, redirections, subshells, background
jobs, environment assignments, shell keywords) is refused, naming the rule it broke and what to write instead:
running a line differently from how its author's shell would is worse than refusing it.

The `~` rules, kept small on purpose:
- `~` or `~/...` at the start of an unquoted word (or of a leading assignment's value) is the daemon's home.
- `~NAME`, `~+` and `~-` at the start of a word are refused ("expansion"): other users' homes and the shell's
  directory stack mean nothing here.
- An unquoted `~` right after `=` or `:` inside a word is refused ("expansion"): bash expands it in words that
  look like assignments (`-e DATA=~/x`) and other shells do not, so the line's meaning is in doubt.
- Any other `~` is an ordinary character, as in every shell.

Expanded values are inserted as they are: never split into several words, never globbed, never dropped.

A line whose first character is `{` is one JSON object instead, for programs that build the argv themselves;
nothing in it is expanded. A JSON object whose op is cancel, attach or done is a submitter's control line
(`parse_control`): it names a reply key and nothing else, and runs no command.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from hostpipe.core.durations import LONGEST_TEXT, parse_duration
from hostpipe.core.request import (
    CONTROL_OPS,
    LineRefused,
    PipeControl,
    Submit,
    is_client_id,
    is_pod_name,
    is_reply_key,
)

MAX_LINE_BYTES = 4096
"""PIPE_BUF on Linux: a pipe write of at most this many bytes is never interleaved with another writer's.
A line and its newline must fit, so a line handed to `parse_line` (without its newline) holds at most 4095."""

POD_FIELD = "HOSTPIPE_POD"
ID_FIELD = "HOSTPIPE_ID"
TIMEOUT_FIELD = "HOSTPIPE_TIMEOUT"
REPLY_FIELD = "HOSTPIPE_REPLY"
RESERVED_FIELDS = (POD_FIELD, ID_FIELD, TIMEOUT_FIELD, REPLY_FIELD)
"""The only assignments a plain line may start with; they fill the request, never the job's environment."""


@dataclass(frozen=True)
class Expansions:
    """The values that `~`, `$HOME` and `$USER` stand for: the daemon user's, since that user runs the job."""

    home: str
    user: str


class _Refuse(Exception):
    """Raised inside the grammar; `parse_line` adds the pod and id read so far and raises LineRefused."""

    def __init__(self, rule: str, reason: str, argument: str | None = None) -> None:
        super().__init__(rule, reason)
        self.rule = rule
        self.reason = reason
        self.argument = argument
        """The text in the line that broke the rule, as written, where there is one."""


@dataclass
class _Fields:
    """What the line has told about itself so far, so that a refusal is filed under the right pod."""

    pod: str | None = None
    client_id: str | None = None
    timeout: float | None = None
    reply: str | None = None


def parse_line(raw: bytes, expansions: Expansions) -> Submit:
    """The request in one pipe line (given without its newline). Raises LineRefused for anything else."""
    if len(raw) >= MAX_LINE_BYTES:
        raise LineRefused(
            "line-too-long",
            f"The line is {len(raw)} bytes, but a line may hold at most {MAX_LINE_BYTES - 1} bytes before "
            "its newline so that lines from concurrent writers are never interleaved; move long arguments "
            "into a file that the command reads.",
        )
    nul = raw.find(b"\0")
    if nul >= 0:
        raise LineRefused(
            "nul-byte",
            f"The line holds a NUL byte at byte offset {nul}, which no argument can carry; remove it.",
        )
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LineRefused(
            "not-utf8",
            f"The line is not valid UTF-8 at byte offset {error.start}; write the line in UTF-8.",
        ) from None
    text = decoded.lstrip(_ASCII_WHITESPACE)
    lead = len(decoded) - len(text)
    text = _strip_end(text)
    if not text:
        raise LineRefused("empty-line", "The line is blank; write one command on it, such as docker run IMAGE.")
    fields = _Fields()
    try:
        if text.startswith("{"):
            return _parse_json(text, fields)
        if text.startswith("["):
            _refuse_json_array(text)
        return _parse_plain(_join_continuations(text), lead, expansions, fields)
    except _Refuse as refusal:
        raise LineRefused(
            refusal.rule,
            refusal.reason,
            pod=fields.pod,
            client_id=fields.client_id,
            argument=refusal.argument,
            reply=fields.reply,
        ) from None


def _strip_end(text: str) -> str:
    stripped = text.rstrip(_ASCII_WHITESPACE)
    # `a\ ` ends with an escaped blank, which is part of the last word: keep it.
    trailing_backslashes = len(stripped) - len(stripped.rstrip("\\"))
    if trailing_backslashes % 2 and len(stripped) < len(text) and text[len(stripped)] in " \t\x0b\x0c":
        return text[: len(stripped) + 1]
    return stripped


def _join_continuations(text: str) -> str:
    """The text with every backslash-newline removed where a shell removes it: before splitting into words,
    outside single quotes and comments, so that `$\\<newline>HOME` is still $HOME."""
    if "\\\n" not in text:
        return text  # only a backslash right before a newline is ever removed
    out: list[str] = []
    quote = ""
    at_word_start = True
    index = 0
    while index < len(text):
        char = text[index]
        if quote == "'":
            quote = "" if char == "'" else quote
        elif char == "\\" and index + 1 < len(text):
            if text[index + 1] != "\n":
                out.append(text[index : index + 2])
                at_word_start = False
            index += 2
            continue
        elif quote == '"':
            quote = "" if char == '"' else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and at_word_start:
            out.append(text[index:])
            break
        out.append(char)
        at_word_start = not quote and char in _WORD_END
        index += 1
    return "".join(out)


# --- plain lines -------------------------------------------------------------------------------------------

_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"
_BLANKS = " \t"
_OPERATORS = ";&|<>()"
_WORD_END = frozenset(_BLANKS + _OPERATORS + "\n")
_GLOB = frozenset("*?[")
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\+?=)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPECIAL_PARAMETERS = frozenset("0123456789@*#?-$")
_SEQUENCE = re.compile(r"x+\.\.x+(?:\.\.x+)?")
# A run of characters that stand for themselves in every word: no blank, operator, quote, escape, expansion,
# pattern or brace. A word made only of these is its own value, and most words are.
_PLAIN_RUN = re.compile(r"[^ \t\n;&|<>()\\'\"$`*?\[~{}]*")
_RAW_WORD = re.compile(r"[^ \t\n;&|<>()]*")
# A line without any of these (and so without a backslash to join lines with) is plain words between blanks:
# nothing in it is quoted, expanded, a pattern, an operator or a comment.
_NOT_PLAIN_LINE = re.compile(r"[\n;&|<>()\\'\"$`*?\[~{}#]")
_BLANK_RUN = re.compile(r"[ \t]+")
_RESERVED_WORDS = frozenset(
    [
        "!",
        "{",
        "}",
        "[[",
        "]]",
        "case",
        "coproc",
        "do",
        "done",
        "elif",
        "else",
        "esac",
        "fi",
        "for",
        "function",
        "if",
        "in",
        "select",
        "then",
        "time",
        "until",
        "while",
    ]
)
_ENV_ADVICE = (
    "pass environment with the runtime's own option (docker -e NAME=value, apptainer --env NAME=value) "
    "or have the site policy pass it (pass_env or env)"
)
_IN_CONTAINER = "run it inside the container instead (for example sh -c '...' as the container's command)"


def _parse_plain(text: str, lead: int, expansions: Expansions, fields: _Fields) -> Submit:
    if _NOT_PLAIN_LINE.search(text) is None:
        # Most lines are plain words; read them in one step unless the first word is one the shell acts on.
        # (A joined continuation can leave blanks at the start, and the split an empty first word: read on.)
        plain = _BLANK_RUN.split(text)
        first = plain[0]
        if first and first not in _RESERVED_WORDS and first != "export" and _ASSIGNMENT.match(first) is None:
            return _submit(tuple(plain), fields)
    words = _Words(text, lead, expansions)
    argv: list[str] = []
    seen: set[str] = set()
    while words.at_word():
        if not argv:
            assignment = _ASSIGNMENT.match(text, words.pos)
            if assignment is not None:
                name, operator = assignment.groups()
                if name not in RESERVED_FIELDS:
                    raise _Refuse("env-assignment", _env_assignment_reason(name), name)
                if operator == "+=":
                    raise _Refuse("shell-syntax", f"{name}+= appends to a shell variable; write {name}=VALUE instead.")
                if name in seen:
                    raise _Refuse("duplicate-field", f"{name} is given twice in the line; give it once.")
                seen.add(name)
                words.pos = assignment.end()
                _set_field(name, words.word(assignment=True), fields)
                continue
            keyword = words.raw_word()
            if keyword in _RESERVED_WORDS:
                raise _Refuse(
                    "shell-syntax",
                    f"'{keyword}' is shell syntax and hostpipe runs no shell; write one plain command per "
                    f"line, or {_IN_CONTAINER}.",
                )
        word = words.word(assignment=False)
        if not argv and word == "export":
            raise _Refuse(
                "env-assignment",
                f"export sets a shell's environment and hostpipe runs no shell; {_ENV_ADVICE}.",
                "export",
            )
        argv.append(word)
    if not argv:
        if seen:
            raise _Refuse(
                "no-command",
                f"The line sets {', '.join(sorted(seen))} but names no command; write the command after them.",
            )
        raise _Refuse("empty-line", "The line holds only a comment; write the command to run before the '#'.")
    return _submit(tuple(argv), fields)


def _submit(argv: tuple[str, ...], fields: _Fields) -> Submit:
    return Submit(argv=argv, pod=fields.pod, id=fields.client_id, timeout=fields.timeout, reply=fields.reply)


def _env_assignment_reason(name: str) -> str:
    hint = f" (did you mean {name.upper()}?)" if name.upper() in RESERVED_FIELDS else ""
    return (
        f"{name}= sets an environment variable, and a line may start only with HOSTPIPE_POD=, HOSTPIPE_ID=, "
        f"HOSTPIPE_TIMEOUT= and HOSTPIPE_REPLY={hint}; {_ENV_ADVICE}."
    )


def _set_field(name: str, value: str, fields: _Fields) -> None:
    if name == POD_FIELD:
        if not is_pod_name(value):
            raise _Refuse("bad-pod", _bad_pod_reason(f"{POD_FIELD}={_shown(value)}"))
        fields.pod = value
    elif name == ID_FIELD:
        if not is_client_id(value):
            raise _Refuse("bad-id", _bad_id_reason(f"{ID_FIELD}={_shown(value)}"))
        fields.client_id = value
    elif name == REPLY_FIELD:
        if not is_reply_key(value):
            raise _Refuse("bad-reply", _bad_reply_reason(f"{REPLY_FIELD}={_shown(value)}"))
        fields.reply = value
    else:
        fields.timeout = _timeout(value, f"{TIMEOUT_FIELD}={_shown(value)}", f"leave {TIMEOUT_FIELD} out")


class _Words:
    """Reads the words of one line left to right and refuses at the first thing a shell would act on."""

    def __init__(self, text: str, lead: int, expansions: Expansions) -> None:
        self.text = text
        self.pos = 0
        self._lead = lead
        self._expansions = expansions

    def at_word(self) -> bool:
        """Moves to the next word; False at the end of the line or at a comment."""
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in _BLANKS:
                self.pos += 1
            elif char == "#":
                if "\n" in text[self.pos :]:
                    raise _Refuse(
                        "command-list",
                        "The comment ends at a newline and a command follows it; write each command as its own line.",
                    )
                return False
            elif char == "\n":
                raise _Refuse(
                    "command-list",
                    "The line holds a newline, which ends a command; write each command as its own line.",
                )
            elif char in _OPERATORS:
                raise self._operator()
            else:
                return True
        return False

    def raw_word(self) -> str:
        """The next word as written, up to the next blank or operator (quotes are not read)."""
        match = _RAW_WORD.match(self.text, self.pos)
        assert match is not None  # the pattern matches the empty string
        return match.group()

    def word(self, *, assignment: bool) -> str:
        """The next word with its quotes removed and ~, $HOME, $USER expanded.

        An assignment's value is neither globbed nor brace-expanded by a shell, so those checks skip it.
        """
        text, start = self.text, self.pos
        plain = _PLAIN_RUN.match(text, start)
        assert plain is not None  # the pattern matches the empty string
        end = plain.end()
        if end == len(text) or text[end] in _WORD_END:
            # Nothing in the word is quoted, escaped, expanded or a pattern, and without `{` there is no
            # brace expansion: the word is its own value.
            self.pos = end
            return plain.group()
        out: list[str] = []
        # Brace expansion reads only unquoted `{ } , .`; every other character becomes "x", quoted ones "q".
        shape: list[str] = []
        if text.startswith("~", start):
            self._tilde(out)
            shape.append("q")
        previous = ""  # the previous character when it was unquoted and literal, for the ~ after = or : rule
        while self.pos < len(text) and text[self.pos] not in _WORD_END:
            char = text[self.pos]
            literal = ""
            if char == "\\":
                if self.pos + 1 == len(text):
                    raise _Refuse(
                        "unterminated-quote",
                        "The line ends with a backslash, which would continue it on the next line; a line "
                        "holds one whole command, so join the lines (or write '\\' for a literal backslash).",
                    )
                out.append(text[self.pos + 1])
                self.pos += 2
            elif char == "'":
                end = text.find("'", self.pos + 1)
                if end < 0:
                    raise self._unterminated("'")
                out.append(text[self.pos + 1 : end])
                self.pos = end + 1
            elif char == '"':
                self._double_quoted(out)
            elif char == "$":
                self._dollar(out, quoted=False)
            elif char == "`":
                raise _backtick()
            elif char in _GLOB and not assignment:
                raise _Refuse(
                    "glob",
                    f"The unquoted '{char}' in {_shown(self._raw_from(start))} is a pattern that a shell "
                    "would expand against the host's files; quote the word if it is meant literally.",
                )
            elif char == "~" and previous in ("=", ":"):
                raise _Refuse(
                    "expansion",
                    f"The ~ after '{previous}' in {_shown(self._raw_from(start))} is expanded by some shells "
                    "and not by others; write $HOME instead, or quote the ~ if it is meant literally.",
                )
            else:
                out.append(char)
                self.pos += 1
                literal = char
            previous = literal
            shape.append(literal if literal in ("{", "}", ",", ".") else "x" if literal else "q")
        if not assignment:
            raw = text[start : self.pos]
            if raw in ("{", "}"):
                raise _Refuse(
                    "shell-syntax",
                    f"A bare '{raw}' is shell syntax (a command group); quote it ('{raw}') if it is an argument.",
                )
            _refuse_brace_expansion(shape, raw)
        return "".join(out)

    def _raw_from(self, start: int) -> str:
        match = _RAW_WORD.match(self.text, self.pos)
        assert match is not None  # the pattern matches the empty string
        return self.text[start : match.end()]

    def _tilde(self, out: list[str]) -> None:
        text, after = self.text, self.pos + 1
        if after == len(text) or text[after] == "/" or text[after] in _WORD_END:
            out.append(self._expansions.home)
            self.pos = after
            return
        end = after
        while end < len(text) and text[end] != "/" and text[end] not in _WORD_END:
            end += 1
        raise _Refuse(
            "expansion",
            f"{_shown(text[self.pos : end])} would be another user's home or a shell's directory stack, and "
            "only a plain ~ (this host's home for hostpipe) is expanded; write the path in full, or quote "
            "the ~.",
        )

    def _double_quoted(self, out: list[str]) -> None:
        text, opening = self.text, self.pos
        self.pos += 1
        while True:
            if self.pos >= len(text):
                raise self._unterminated('"', opening)
            char = text[self.pos]
            if char == '"':
                self.pos += 1
                return
            if char == "\\":
                escaped = text[self.pos + 1 : self.pos + 2]
                # POSIX: inside double quotes a backslash escapes only these (and a newline, removed by
                # _join_continuations); before anything else it stays.
                if escaped and escaped in '$`"\\':
                    out.append(escaped)
                    self.pos += 2
                else:
                    out.append("\\")
                    self.pos += 1
            elif char == "$":
                self._dollar(out, quoted=True)
            elif char == "`":
                raise _backtick()
            else:
                out.append(char)
                self.pos += 1

    def _dollar(self, out: list[str], *, quoted: bool) -> None:
        text, at = self.text, self.pos
        following = text[at + 1 : at + 2]
        allowed = {"HOME": self._expansions.home, "USER": self._expansions.user}
        if following == "(":
            if text.startswith("((", at + 1):
                raise _Refuse(
                    "command-substitution",
                    "$((...)) is shell arithmetic and hostpipe runs no shell; write the resulting number itself.",
                )
            raise _Refuse(
                "command-substitution",
                f"$(...) runs a command in a shell and hostpipe runs no shell; {_IN_CONTAINER}, or quote the "
                "text with single quotes if it is meant literally.",
            )
        if following == "{":
            close = text.find("}", at + 2)
            name = text[at + 2 : close] if close >= 0 else None
            if name is not None and name in allowed:
                out.append(allowed[name])
                self.pos = close + 1
                return
            written = text[at : close + 1] if close >= 0 else text[at:]
            raise _Refuse("expansion", _expansion_reason(written), written)
        if following and _NAME.match(following):
            name_match = _NAME.match(text, at + 1)
            assert name_match is not None
            name = name_match.group()
            if name in allowed:
                out.append(allowed[name])
                self.pos = name_match.end()
                return
            raise _Refuse("expansion", _expansion_reason("$" + name), "$" + name)
        if following == "!":
            raise _Refuse(
                "expansion",
                "$! is the pid of a shell's last background job and hostpipe runs no shell; every job "
                "already runs in the background, and its pid is in the job record (hostpipe ps --json).",
            )
        if following and following in _SPECIAL_PARAMETERS:
            raise _Refuse("expansion", _expansion_reason("$" + following), "$" + following)
        if following in ("'", '"') and not quoted:
            raise _Refuse(
                "shell-syntax",
                f"${following}...{following} is bash quoting that hostpipe does not read; use plain single "
                "quotes, or the JSON form of the line for arguments with control characters.",
            )
        # A `$` before anything else is an ordinary character in every shell.
        out.append("$")
        self.pos += 1

    def _operator(self) -> _Refuse:
        text, at = self.text, self.pos
        char, pair = text[at], text[at : at + 2]
        if char == ";" or pair in ("&&", "||"):
            written = pair if pair in ("&&", "||", ";;") else char
            return _Refuse(
                "command-list",
                f"'{written}' joins commands into a list, and one line is one command; write each command as "
                "its own line.",
                written,
            )
        if pair in ("<(", ">("):
            return _Refuse(
                "command-substitution",
                f"{pair}...) is process substitution, which needs a shell, and hostpipe runs no shell; "
                f"{_IN_CONTAINER}.",
                pair,
            )
        if char in "<>" or pair == "&>":
            written = _redirection(text, at)
            return _Refuse(
                "redirection",
                f"'{written}' redirects the command's input or output, and each job's output is kept in its "
                "own log (hostpipe logs JOB) with its input from /dev/null; drop the redirection.",
                written,
            )
        if char == "&":
            return _Refuse(
                "background",
                "'&' runs a command in the background, and every job already runs in the background in its "
                "own session; drop the '&' (pid, state and exit status are in the job record: hostpipe ps).",
                char,
            )
        if char == "|":
            return _Refuse(
                "pipeline",
                "'|' builds a pipeline and hostpipe runs no shell; run the pipeline inside the container "
                "instead (for example sh -c 'a | b' as the container's command).",
                char,
            )
        return _Refuse(
            "subshell",
            f"'{char}' starts or ends a subshell, and every job already runs in its own session and process "
            "group; drop the parentheses (and any setsid or nohup).",
            char,
        )

    def _unterminated(self, quote: str, opening: int | None = None) -> _Refuse:
        column = self._lead + (self.pos if opening is None else opening) + 1
        return _Refuse(
            "unterminated-quote",
            f"The {quote} quote at column {column} is never closed; close it, or escape it with a backslash "
            "if it is meant literally.",
        )


def _redirection(text: str, at: int) -> str:
    end = at
    while end < len(text) and text[end] in "<>&|" and end - at < 3:
        end += 1
    return text[at:end]


def _backtick() -> _Refuse:
    return _Refuse(
        "command-substitution",
        f"Backquotes run a command in a shell and hostpipe runs no shell; {_IN_CONTAINER}, or quote the text "
        "with single quotes if it is meant literally.",
        "`",
    )


def _expansion_reason(written: str) -> str:
    return (
        f"{_shown(written)} is a shell expansion and hostpipe runs no shell, so only ~, $HOME, $USER, "
        f"${{HOME}} and ${{USER}} are expanded; {_ENV_ADVICE}, or single-quote the text if the $ is meant "
        "literally."
    )


def _refuse_brace_expansion(shape: list[str], raw: str) -> None:
    """Refuses `{a,b}` and `{1..3}` outside quotes: bash turns them into several words, POSIX sh does not."""
    opened: list[tuple[int, bool]] = []
    for index, mark in enumerate(shape):
        if mark == "{":
            opened.append((index, False))
        elif mark == "," and opened:
            opened[-1] = (opened[-1][0], True)
        elif mark == "}" and opened:
            start, has_comma = opened.pop()
            if has_comma or _SEQUENCE.fullmatch("".join(shape[start + 1 : index])):
                raise _Refuse(
                    "brace-expansion",
                    f"{_shown(raw)} is a brace expansion that bash turns into several words; write each word "
                    "out, or quote it if it is meant literally.",
                )


# --- JSON lines --------------------------------------------------------------------------------------------

_JSON_KEYS = ("argv", "pod", "id", "timeout", "reply", "op")
_JSON_EXAMPLE = '{"argv": ["docker", "run", "IMAGE"]}'


class _Members(list[tuple[str, object]]):
    """A JSON object's members in order with duplicates kept, so that a duplicate key can be named."""


def _reject_constant(name: str) -> object:
    raise _Refuse(
        "bad-json",
        f"{name} is not part of JSON; write timeouts as a finite number of seconds or as a string.",
    )


def _load_json(text: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_Members, parse_constant=_reject_constant)
    except RecursionError:
        raise _Refuse(
            "bad-json",
            f"The JSON is nested too deeply to read; write one flat object such as {_JSON_EXAMPLE}.",
        ) from None
    except ValueError as error:
        where = f" ({error.msg} at column {error.pos + 1})" if isinstance(error, json.JSONDecodeError) else ""
        raise _Refuse(
            "bad-json",
            f"The line starts like JSON but is not valid JSON{where}; write one object such as "
            f"{_JSON_EXAMPLE}, or a plain command line.",
        ) from None


def _refuse_json_array(text: str) -> None:
    """A line that is a JSON array was meant as an argv; say so instead of reading it as shell words."""
    try:
        document = _load_json(text)
    except _Refuse:
        return
    if isinstance(document, list) and not isinstance(document, _Members):
        raise _Refuse(
            "bad-json",
            f"A JSON request is one object, not an array; put the array under argv, as in {_JSON_EXAMPLE}.",
        )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, _Members):
        return "object"
    return "array"


def _parse_json(text: str, fields: _Fields) -> Submit:
    document = _load_json(text)
    if not isinstance(document, _Members):
        raise _Refuse("bad-json", f"A JSON request is one object; write it as {_JSON_EXAMPLE}.")
    members: dict[str, object] = {}
    duplicates: list[str] = []
    for key, value in document:
        if key in members:
            duplicates.append(key)
        else:
            members[key] = value
    # File a later refusal under the pod (and id) when they are given once and are valid.
    pod, client_id, reply = members.get("pod"), members.get("id"), members.get("reply")
    if "pod" not in duplicates and isinstance(pod, str) and is_pod_name(pod):
        fields.pod = pod
    if "id" not in duplicates and isinstance(client_id, str) and is_client_id(client_id):
        fields.client_id = client_id
    if "reply" not in duplicates and isinstance(reply, str) and is_reply_key(reply):
        fields.reply = reply
    if duplicates:
        raise _Refuse(
            "duplicate-field",
            f"The key {_shown_json(duplicates[0])} is given twice in the object; give it once.",
        )
    for key in members:
        if key not in _JSON_KEYS:
            advice = f"; {_ENV_ADVICE}" if key.lower() in ("env", "environment") else ""
            raise _Refuse(
                "bad-field",
                f"The key {_shown_json(key)} is unknown: a request holds only argv, pod, id, timeout and op, and "
                f"a client's reply key (reply){advice}.",
            )
    if "op" in members and members["op"] in CONTROL_OPS:
        _control(members)
        raise _Refuse(
            "pipe-control",
            f"op {_shown_json(members['op'])} is a submitter's control line for the job of its reply key; the "
            "daemon acts on it and it runs no command.",
        )
    if "op" in members and members["op"] != "submit":
        raise _Refuse(
            "bad-field",
            f"op {_shown_json(members['op'])} is not a pipe request: the pipe takes 'submit' (or no op), and "
            "'cancel', 'attach' or 'done' with a reply key alone; an operator cancels jobs with hostpipe cancel.",
        )
    argv = _json_argv(members)
    if members.get("pod") is not None and fields.pod is None:
        raise _Refuse("bad-pod", _bad_pod_reason(f"pod {_shown_json(members['pod'])}"))
    if members.get("id") is not None and fields.client_id is None:
        raise _Refuse("bad-id", _bad_id_reason(f"id {_shown_json(members['id'])}"))
    if members.get("reply") is not None and fields.reply is None:
        raise _Refuse("bad-reply", _bad_reply_reason(f"reply {_shown_json(members['reply'])}"))
    timeout = members.get("timeout")
    if timeout is not None:
        written = f"timeout {_shown_json(timeout)}"
        if isinstance(timeout, bool) or not isinstance(timeout, int | float | str):
            raise _Refuse("bad-timeout", _bad_timeout_reason(written))
        fields.timeout = _timeout(timeout, written, "leave timeout out")
    return _submit(argv, fields)


def _control(members: dict[str, object]) -> PipeControl:
    """The control line in a JSON object whose op is cancel, attach or done: its reply key and nothing else."""
    for key in members:
        if key not in ("op", "reply"):
            raise _Refuse(
                "bad-field",
                f"A control line holds only op and reply; the key {_shown_json(key)} has no place in it (the "
                "reply key names the job); an operator cancels jobs with hostpipe cancel.",
            )
    reply = members.get("reply")
    if not isinstance(reply, str) or not is_reply_key(reply):
        raise _Refuse("bad-reply", _bad_reply_reason(f"reply {_shown_json(reply)}"))
    op = members["op"]
    assert isinstance(op, str)
    return PipeControl.model_validate({"op": op, "reply": reply})


def parse_control(raw: bytes) -> PipeControl | None:
    """The control line in `raw`, or None when `raw` is anything else: a command line, or a control line that
    does not hold exactly a valid op and reply key (which `parse_line` then refuses with its reason)."""
    text = raw.strip(_ASCII_WHITESPACE.encode())
    if not text.startswith(b"{") or b'"op"' not in text or len(text) >= MAX_LINE_BYTES:
        return None
    try:
        document = json.loads(text, object_pairs_hook=_Members)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, _Members):
        return None
    members = dict(document)
    if len(members) != len(document) or members.get("op") not in CONTROL_OPS:
        return None
    try:
        return _control(members)
    except _Refuse:
        return None


def _json_argv(members: dict[str, object]) -> tuple[str, ...]:
    if "argv" not in members:
        raise _Refuse("bad-field", f"The object has no argv; give the command as in {_JSON_EXAMPLE}.")
    argv = members["argv"]
    if not isinstance(argv, list) or isinstance(argv, _Members):
        raise _Refuse(
            "bad-field",
            f"argv is a {_json_type(argv)}; give it as an array of strings, as in {_JSON_EXAMPLE}.",
        )
    if not argv:
        raise _Refuse("no-command", f"argv is empty; list the program and its arguments, as in {_JSON_EXAMPLE}.")
    words: list[str] = []
    for index, word in enumerate(argv):
        if not isinstance(word, str):
            raise _Refuse(
                "bad-field",
                f"argv[{index}] is a {_json_type(word)}; write every argument as a JSON string.",
            )
        if "\0" in word:
            raise _Refuse("nul-byte", f"argv[{index}] holds a NUL character, which no argument can carry; remove it.")
        try:
            word.encode("utf-8")
        except UnicodeEncodeError:
            raise _Refuse(
                "bad-field",
                f"argv[{index}] holds a lone surrogate escape, which is not text; write the character itself "
                "or its full surrogate pair.",
            ) from None
        words.append(word)
    return tuple(words)


# --- shared ----------------------------------------------------------------------------------------------


def _timeout(value: str | int | float, written: str, leave_out: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise _Refuse("bad-timeout", _bad_timeout_reason(written)) from None
    if seconds <= 0:
        raise _Refuse(
            "bad-timeout",
            f"{written} is zero; give a duration greater than 0, or {leave_out} to use the policy's default.",
        )
    return seconds


def _bad_timeout_reason(written: str) -> str:
    return (
        f"{written} is not a usable duration; write a number of seconds greater than 0 and at most "
        f"{LONGEST_TEXT}, or a duration such as 90s, 1.5m, 2h, 1d or 1h30m."
    )


def _bad_pod_reason(written: str) -> str:
    return (
        f"{written} is not a pod name; write namespace/name, each part a Kubernetes name of lowercase "
        "letters, digits, '-' and '.'."
    )


def _bad_reply_reason(written: str) -> str:
    return (
        f"{written} is not a reply key; write the 64 lowercase hex digits the client made (or their first 32, "
        "the nonce, for a reply without a token), as hostpipe submit and hostpipe-submit do."
    )


def _bad_id_reason(written: str) -> str:
    return (
        f"{written} is not a usable id; write 1 to 128 letters, digits, '.', '_' or '-', starting with a "
        "letter or digit."
    )


def _shown(text: str, limit: int = 60) -> str:
    """Text quoted for a reason, cut short so that one reason stays one readable line."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


def _shown_json(value: object) -> str:
    return _shown(json.dumps(value)) if not isinstance(value, str) else _shown(value)
