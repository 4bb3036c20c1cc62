"""Property tests: the parser never raises, its two paths agree, valid configs round-trip."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenvmmu import xlcfg

DIALECTS = list(xlcfg.DIALECTS)

# Pieces libxlu's scanner cares about, including the awkward ones.
PIECES = st.sampled_from(
    [
        "memory",
        "name",
        "disk",
        "vif.default",
        "a_b",
        "X",
        "_k",
        "1024",
        "0x1f",
        "010",
        "512k",
        '"str"',
        "'s'",
        '"a\\nb"',
        '"\\x41"',
        '"\\101"',
        '"\\q"',
        '"\\1 23"',
        "'\\'",
        '"',
        "=",
        "+=",
        "-=",
        "[",
        "]",
        ",",
        ";",
        "\n",
        "\r\n",
        "# c\n",
        "#",
        " ",
        "\t",
        "(",
        ")",
        ":",
        ".",
        "$",
        "\x00",
        "\xff",
        "\x7f",
        "\f",
        "import os\n",
        '"\x00"',
    ]
)
GRAMMARISH = st.lists(PIECES, max_size=40).map("".join)


def _invariants(result: xlcfg.ParseResult) -> None:
    if result.ok:
        assert result.errors == () and result.crash is None and not result.python_warning
    else:
        assert result.settings == ()
        assert result.errors or result.crash


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.sampled_from(DIALECTS))
def test_random_bytes_never_raise(data: bytes, dialect: str) -> None:
    _invariants(xlcfg.parse(data, dialect))
    _invariants(xlcfg.parse(data, dialect, fast=False))


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(GRAMMARISH, st.sampled_from(DIALECTS))
def test_fast_path_agrees_with_replay(text: str, dialect: str) -> None:
    data = text.encode("latin-1")
    slow = xlcfg.parse(data, dialect, fast=False)
    fast = xlcfg.parse(data, dialect, fast=True)
    _invariants(slow)
    assert xlcfg.to_json(fast) == xlcfg.to_json(slow)


KEYS = st.from_regex(r"[a-z][_0-9a-z]{0,8}", fullmatch=True)
NUMBERS = st.from_regex(r"[0-9][0-9a-fx]{0,6}", fullmatch=True)
SAFE_CHARS = st.characters(
    codec="latin-1", exclude_characters="\n\x00\\\"'", exclude_categories=("Cs",)
)
STRINGS = st.text(SAFE_CHARS, max_size=12)
ESCAPES = {"\\": "\\\\", '"': '\\"', "'": "\\'", "\t": "\\t", "\a": "\\a"}


def _quote(s: str, q: str) -> str:
    return q + "".join(ESCAPES.get(c, c) for c in s) + q


@st.composite
def values(draw: st.DrawFn, depth: int) -> tuple[object, str]:
    """A value and its xl.cfg spelling (strings may carry escapes)."""
    kind = draw(st.sampled_from(["num", "str", "list"] if depth else ["num", "str"]))
    if kind == "num":
        n = draw(NUMBERS)
        return n, n
    if kind == "str":
        s = draw(st.text(st.sampled_from("ab \t\"'\\#;[]=,\a"), max_size=8) | STRINGS)
        return s, _quote(s, draw(st.sampled_from(['"', "'"])))
    items = draw(st.lists(values(depth - 1), max_size=4))
    seps = draw(
        st.lists(
            st.sampled_from([",", ", ", ",\n  ", " ,# c\n "]),
            min_size=len(items),
            max_size=len(items),
        )
    )
    trailing = draw(st.booleans())
    body = "".join(
        text + (sep if i < len(items) - 1 or trailing else "")
        for i, ((_, text), sep) in enumerate(zip(items, seps, strict=True))
    )
    return tuple(v for v, _ in items), "[" + draw(st.sampled_from(["", " ", "\n"])) + body + "]"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(KEYS, values(2)), max_size=8),
    st.sampled_from(["4.6", "4.7", "4.13"]),
    st.booleans(),
)
def test_round_trip(
    assignments: list[tuple[str, tuple[object, str]]], dialect: str, final_nl: bool
) -> None:
    lines = [f"{k} = {text}" for k, (_, text) in assignments]
    text = "# generated\n" + "\n".join(lines) + ("\n" if final_nl else "")
    result = xlcfg.parse(text.encode("latin-1"), dialect)
    assert result.ok, (text, result.errors)
    assert [(s.key, _public(s.value)) for s in result.settings] == [
        (k, v) for k, (v, _) in assignments
    ]
    assert xlcfg.to_json(result) == xlcfg.to_json(
        xlcfg.parse(text.encode("latin-1"), dialect, fast=False)
    )


def _public(value: object) -> object:
    """Our generated strings are Latin-1 text; the parser returns UTF-8/surrogateescape."""
    if isinstance(value, tuple):
        return tuple(_public(v) for v in value)
    assert isinstance(value, str)
    return value.encode("utf-8", "surrogateescape").decode("latin-1")
