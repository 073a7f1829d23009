"""Pod-controlled text made harmless for a terminal: control characters shown, never obeyed.

A line, a reason, a pod name or a job's log is written by a pod. Printed raw, an ESC sequence in it can set
the terminal's title, move the cursor over earlier output ("all jobs succeeded"), or, with some terminals,
answer back. Wherever such text goes to a terminal it passes through `escape`: C0 controls, DEL, the C1 range,
and the Unicode bidirectional overrides and isolates (which reorder what the eye reads) become visible
escapes such as `\\x1b` or `\\u202e`; bytes that were not UTF-8 (decoded with surrogateescape) become
`\\xNN`. The CLI (`hostpipe.cli.escape`) and the daemon's console log use it; JSON stays exact.
"""

from __future__ import annotations

_BIDI = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A)) | {0x200E, 0x200F, 0x061C}
"""LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI; LRM, RLM; the Arabic letter mark."""


def _unsafe(code: int) -> bool:
    return code < 0x20 or 0x7F <= code <= 0x9F or code in _BIDI or 0xDC80 <= code <= 0xDCFF


def _escape_char(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def needs_escape(text: str) -> bool:
    return any(_unsafe(ord(c)) for c in text)


def escape(text: str, *, keep: str = "") -> str:
    """`text` with every control character (but those in `keep`) written as a visible escape."""
    if not needs_escape(text):
        return text
    return "".join(_escape_char(c) if c not in keep and _unsafe(ord(c)) else c for c in text)
