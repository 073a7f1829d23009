"""The pflag reader splits a command line into options and positionals exactly as Go's pflag does."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostpipe.core.runtimes.base import ArgvRefused, OptionSpec, ValueType
from hostpipe.core.runtimes.pflag import parse_bool, read_flags

TABLE = (
    OptionSpec(("--interactive", "-i"), takes_value=False),
    OptionSpec(("--tty", "-t"), takes_value=False),
    OptionSpec(("--detach", "-d"), takes_value=False),
    OptionSpec(("--volume", "-v"), takes_value=True),
    OptionSpec(("--env", "-e"), takes_value=True),
    OptionSpec(("--name",), takes_value=True),
    OptionSpec(("--network", "--net"), takes_value=True),
    OptionSpec(("--privileged",), takes_value=False),
    OptionSpec(("--color", "-C"), takes_value=True, optional_value=True),
)

Read = tuple[list[tuple[str, str | None]], list[str]]


def read(words: list[str], *, interspersed: bool = False) -> Read:
    options, positionals = read_flags(words, TABLE, interspersed=interspersed, command="demo")
    return [(o.name, o.value) for o in options], list(positionals)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        # Long option with `=`: the value is everything after the first `=`, even more `=` signs.
        (["--env=A=b", "img"], ([("--env", "A=b")], ["img"])),
        # Long option with its value in the next word.
        (["--name", "n", "img"], ([("--name", "n")], ["img"])),
        # A value word that looks like an option is still the value: pflag never checks.
        (["--name", "--privileged", "img"], ([("--name", "--privileged")], ["img"])),
        (["-e", "-v", "img"], ([("--env", "-v")], ["img"])),
        # Short option: separate, attached, and `-x=v`.
        (["-v", "/a:/b", "img"], ([("--volume", "/a:/b")], ["img"])),
        (["-v/a:/b", "img"], ([("--volume", "/a:/b")], ["img"])),
        (["-v=/a:/b", "img"], ([("--volume", "/a:/b")], ["img"])),
        # `-e=` is two characters after the dash, so pflag reads the attached value "=".
        (["-e=", "img"], ([("--env", "=")], ["img"])),
        # A cluster of booleans, then one ending in a value flag whose value is attached or the next word.
        (["-itd", "img"], ([("--interactive", "true"), ("--tty", "true"), ("--detach", "true")], ["img"])),
        (["-itv/a:/b", "img"], ([("--interactive", "true"), ("--tty", "true"), ("--volume", "/a:/b")], ["img"])),
        (["-itv", "/a:/b", "img"], ([("--interactive", "true"), ("--tty", "true"), ("--volume", "/a:/b")], ["img"])),
        # `=` inside a cluster gives the value to the flag right before it.
        (["-it=false", "img"], ([("--interactive", "true"), ("--tty", "false")], ["img"])),
        # Booleans take ParseBool's spellings and are reported as "true"/"false".
        (["--privileged=1", "img"], ([("--privileged", "true")], ["img"])),
        (["--privileged=F", "img"], ([("--privileged", "false")], ["img"])),
        (["--privileged=TRUE", "img"], ([("--privileged", "true")], ["img"])),
        (["-i=0", "img"], ([("--interactive", "false")], ["img"])),
        # A boolean never takes the next word: `--privileged false` makes "false" the first positional.
        (["--privileged", "false"], ([("--privileged", "true")], ["false"])),
        # An optional value is taken only with `=`; bare, it has no value and the next word is positional.
        (["--color", "img"], ([("--color", None)], ["img"])),
        (["--color=auto", "img"], ([("--color", "auto")], ["img"])),
        (["-Ci", "img"], ([("--color", None), ("--interactive", "true")], ["img"])),
        # Another spelling of the same option reports the canonical name.
        (["--net", "host", "img"], ([("--network", "host")], ["img"])),
        # Repeated options are all reported, in order.
        (["-e", "A=1", "--env=B=2", "-eC=3", "img"], ([("--env", "A=1"), ("--env", "B=2"), ("--env", "C=3")], ["img"])),
        # `--` ends the options and is dropped; a second `--` is positional.
        (["-i", "--", "--privileged", "--", "x"], ([("--interactive", "true")], ["--privileged", "--", "x"])),
        # A lone `-` and an empty word are positionals.
        (["-", "-i"], ([], ["-", "-i"])),
        (["", "-i"], ([], ["", "-i"])),
        # Not interspersed: everything after the first positional is left alone.
        (["img", "--privileged", "-v", "/:/h"], ([], ["img", "--privileged", "-v", "/:/h"])),
    ],
)
def test_reads_every_spelling_pflag_accepts(words: list[str], expected: Read) -> None:
    """Each spelling pflag accepts gives the options and positionals pflag would give."""
    assert read(words) == expected


def test_interspersed_reading_collects_positionals_between_options() -> None:
    """With interspersed reading, options after a positional are still options."""
    assert read(["a", "-i", "b", "--name=n", "--", "-t"], interspersed=True) == (
        [("--interactive", "true"), ("--name", "n")],
        ["a", "b", "-t"],
    )


def test_spelling_records_the_words_as_written() -> None:
    """An option's spelling is the words that carried it, so a refusal can quote them."""
    options, _ = read_flags(["-itv", "/a b:/c", "--name=x", "img"], TABLE, interspersed=False)
    assert [o.spelling for o in options] == ["-itv", "-itv", "-itv '/a b:/c'", "--name=x"]


@pytest.mark.parametrize(
    ("words", "rule"),
    [
        # An option the table does not define, long or short, alone or inside a cluster.
        (["--privileged-mode", "img"], "unknown-option"),
        (["--net-host=1", "img"], "unknown-option"),
        (["-x", "img"], "unknown-option"),
        (["-itx", "img"], "unknown-option"),
        # pflag would print help for an undefined -h/--help: not a command to run.
        (["-h", "img"], "unknown-option"),
        (["--help", "img"], "unknown-option"),
        # A value flag at the very end, long, short, or closing a cluster.
        (["--name"], "missing-value"),
        (["-v"], "missing-value"),
        (["-itv"], "missing-value"),
        # A boolean value ParseBool rejects (pflag errors out).
        (["--privileged=yes", "img"], "bad-boolean"),
        (["-i=on", "img"], "bad-boolean"),
        (["--privileged=", "img"], "bad-boolean"),
        # Long options pflag reports as bad syntax.
        (["---privileged", "img"], "bad-syntax"),
        (["--=x", "img"], "bad-syntax"),
        # pflag silently drops `-test.*` words; hostpipe does not guess.
        (["-test.v", "img"], "bad-syntax"),
        # `-i=` is `-i` then `=`, which is no shorthand.
        (["-i=", "img"], "unknown-option"),
    ],
)
def test_refuses_what_pflag_would_reject_or_read_surprisingly(words: list[str], rule: str) -> None:
    """Argvs pflag rejects, or reads in a way a rule could misjudge, are refused with a named rule."""
    with pytest.raises(ArgvRefused) as refused:
        read(words)
    assert refused.value.rule == rule


def test_unknown_option_refusal_names_the_command() -> None:
    """The refusal says which command does not know the option."""
    with pytest.raises(ArgvRefused) as refused:
        read_flags(["--bogus"], TABLE, interspersed=False, command="docker run")
    assert refused.value.argument == "--bogus"
    assert "not a known option of docker run" in refused.value.reason


def test_parse_bool_accepts_exactly_gos_spellings() -> None:
    """strconv.ParseBool's twelve spellings and nothing else."""
    assert [parse_bool(s) for s in ("1", "t", "T", "TRUE", "true", "True")] == [True] * 6
    assert [parse_bool(s) for s in ("0", "f", "F", "FALSE", "false", "False")] == [False] * 6
    assert [parse_bool(s) for s in ("", "yes", "tRUE", "2", " true")] == [None] * 5


def test_refuses_a_table_pflag_could_not_define() -> None:
    """A table naming an option twice is a programming error, caught at once."""
    with pytest.raises(ValueError, match="twice"):
        read_flags([], (OptionSpec(("--a", "-a"), False), OptionSpec(("--b", "-a"), True)), interspersed=False)


WORDS = st.lists(
    st.one_of(
        st.sampled_from(["-", "--", "-i", "-itv", "-v", "--name", "--name=", "--privileged=x", "-test.x", "---"]),
        st.text(alphabet="-=itvdeCx/:ab", max_size=8),
    ),
    max_size=8,
)


@given(words=WORDS, interspersed=st.booleans())
@settings(max_examples=400)
def test_never_raises_anything_but_a_refusal(words: list[str], interspersed: bool) -> None:
    """Whatever the words, the reader returns or raises ArgvRefused, and loses no positional word."""
    try:
        options, positionals = read_flags(words, TABLE, interspersed=interspersed)
    except ArgvRefused:
        return
    assert len(positionals) <= len(words)
    assert all(o.name in {s.canonical for s in TABLE} for o in options)


_VALUED = [s for s in TABLE if s.takes_value and not s.optional_value]
_SWITCHES = [s for s in TABLE if not s.takes_value]


@st.composite
def spelled(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """Options with values, and two independent ways of writing them."""
    chosen: list[tuple[OptionSpec, str]] = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            spec = draw(st.sampled_from(_VALUED))
            chosen.append((spec, draw(st.text(alphabet="-=/:ab x", max_size=5))))
        else:
            chosen.append((draw(st.sampled_from(_SWITCHES)), draw(st.sampled_from(["true", "false"]))))

    def write() -> list[str]:
        words: list[str] = []
        for spec, value in chosen:
            long = draw(st.sampled_from([n for n in spec.names if n.startswith("--")]))
            shorts = [n for n in spec.names if len(n) == 2]
            if not spec.takes_value:
                forms = [f"{long}=" + draw(st.sampled_from(["true", "1", "T"] if value == "true" else ["0", "F"]))]
                forms += [long] if value == "true" else []
                forms += [f"{s}={value}" for s in shorts] + ([s for s in shorts] if value == "true" else [])
                words.append(draw(st.sampled_from(forms)))
                continue
            forms_v: list[list[str]] = [[f"{long}={value}"], [long, value]]
            for s in shorts:
                forms_v.append([s, value])
                if value:
                    # `-v=` alone is `-v` with the value "=", so `-s=` and `-sVALUE` need a value.
                    forms_v.append([f"{s}={value}"])
                if value and not value.startswith("="):
                    forms_v.append([s + value])
            words += draw(st.sampled_from(forms_v))
        return words

    expected = [(spec.canonical, value) for spec, value in chosen]
    return expected, write(), write()


@given(case=spelled())
@settings(max_examples=300)
def test_every_spelling_of_the_same_options_reads_the_same(
    case: tuple[list[tuple[str, str]], list[str], list[str]],
) -> None:
    """Two spellings of the same options read back as the same options and values, and the image survives."""
    expected, first, second = case
    for words in (first, second):
        options, positionals = read_flags([*words, "img", "-x"], TABLE, interspersed=False)
        assert [(o.name, o.value) for o in options] == expected
        assert positionals == ("img", "-x")


# --- list types: what pflag appends for one occurrence ------------------------------------------------------

LISTS = (
    OptionSpec(("--slice", "-s"), takes_value=True, value_type=ValueType.STRING_SLICE),
    OptionSpec(("--array",), takes_value=True, value_type=ValueType.STRING_ARRAY),
    OptionSpec(("--list",), takes_value=True, value_type=ValueType.LIST),
)


@pytest.mark.parametrize(
    ("words", "elements"),
    [
        # A StringSlice value is one CSV record: every comma starts another element.
        (["--slice", "a,b"], [("a", "b")]),
        (["-sa,b,,c"], [("a", "b", "", "c")]),
        (["--slice=max-size=10mb,path=/etc/x"], [("max-size=10mb", "path=/etc/x")]),
        # An empty value appends nothing (pflag's readAsCSV).
        (["--slice="], [()]),
        # Each occurrence is read on its own and appended.
        (["--slice", "a", "--slice=b,c"], [("a",), ("b", "c")]),
        # A StringArray, and docker's ListOpts, keep every value whole.
        (["--array", "a,b", "--list=c,d"], [None, None]),
    ],
)
def test_cuts_a_string_slice_into_the_elements_pflag_appends(
    words: list[str], elements: list[tuple[str, ...] | None]
) -> None:
    """A StringSlice option's value becomes the CSV fields pflag appends; other types stay one element."""
    options, _ = read_flags([*words, "img"], LISTS, interspersed=False)
    assert [o.elements for o in options] == elements
    for option, element in zip(options, elements, strict=True):
        assert option.items() == (element if element is not None else (option.value,))


@pytest.mark.parametrize(
    "value",
    ['"keep-groups"', 'a,"b,c"', 'a"b', "a\nb", "a\r\nb", "\nkeep-groups", 'x,""'],
)
def test_refuses_a_slice_value_csv_reads_differently_from_a_plain_split(value: str) -> None:
    """Quotes and line breaks make Go's csv see other elements than the words show: refused, not guessed."""
    with pytest.raises(ArgvRefused) as refused:
        read_flags([f"--slice={value}", "img"], LISTS, interspersed=False, command="podman run")
    assert refused.value.rule == "ambiguous-value"
    assert refused.value.argument == shlex.quote(f"--slice={value}")
    # StringArray values are never read as CSV, so the same value is taken whole.
    options, _ = read_flags([f"--array={value}", "img"], LISTS, interspersed=False)
    assert options[0].value == value


@given(value=st.text(alphabet='ab,=/ "\n', max_size=12))
@settings(max_examples=300)
def test_slice_elements_are_exactly_the_csv_fields_when_read(value: str) -> None:
    """Whenever a slice value is read, its elements join back into the value (nothing added or lost)."""
    try:
        options, _ = read_flags([f"--slice={value}", "img"], LISTS, interspersed=False)
    except ArgvRefused:
        assert any(c in value for c in '"\r\n')
        return
    elements = options[0].elements
    assert elements is not None
    assert ",".join(elements) == value
    assert not any(c in value for c in '"\r\n')
