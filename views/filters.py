"""Report filters: ``dimension OP value`` conditions on the catalogue's dimensions, all of
which must hold (``page==/pricing;country==FR``).

Operators: ``==`` (is), ``!=`` (is not), ``=@`` (contains) and ``!@`` (does not contain),
compared as the stored values are (case-sensitive). A ``;`` or ``\\`` inside a value is
written ``\\;`` or ``\\\\``. A filter selects events (an event dimension) or sessions (an entry
or exit page).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from views.catalogue import DIMENSION_ALIASES, DIMENSIONS, is_breakdown_view

OPERATORS = {"==": "is", "!=": "is not", "=@": "contains", "!@": "does not contain"}
MAX_FILTERS = 8
MAX_VALUE_CHARS = 512
_SPLIT = re.compile(r"(?<!\\)((?:\\\\)*);")
_OP = re.compile(r"(==|!=|=@|!@)")


class FilterError(ValueError):
    """A filter that cannot be read; the message says which and why."""


@dataclass(frozen=True)
class Filter:
    dimension: str
    op: str
    value: str

    def matches(self, value: str) -> bool:
        if self.op == "==":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        if self.op == "=@":
            return self.value in value
        return self.value not in value

    @property
    def source(self) -> str:
        """"event" or "session": what the filter selects."""
        return DIMENSIONS[self.dimension].source if self.dimension in DIMENSIONS else "event"

    def __str__(self) -> str:
        return f"{self.dimension}{self.op}{self.value.replace(chr(92), chr(92) * 2).replace(';', chr(92) + ';')}"


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_filters(text: str | None) -> tuple[Filter, ...]:
    """The filters of a ``filters`` parameter, in order; empty for none."""
    if not text:
        return ()
    parts = [p for p in _split(text) if p.strip()]
    if len(parts) > MAX_FILTERS:
        raise FilterError(f"at most {MAX_FILTERS} filters, got {len(parts)}")
    out = []
    for part in parts:
        m = _OP.search(part)
        if m is None:
            raise FilterError(f"filter {part!r} has no operator: use dimension==value, !=, =@ (contains) or "
                              "!@ (does not contain)")
        dimension, value = part[:m.start()].strip(), _unescape(part[m.end():])
        dimension = DIMENSION_ALIASES.get(dimension, (dimension, ""))[0]
        if not is_breakdown_view(dimension):
            raise FilterError(f"filter {part!r}: unknown dimension {dimension!r}; use one of "
                              f"{', '.join(DIMENSIONS)} or prop:<key>")
        if len(value) > MAX_VALUE_CHARS:
            raise FilterError(f"filter {part!r}: a value has at most {MAX_VALUE_CHARS} characters")
        out.append(Filter(dimension, m.group(1), value))
    return tuple(out)


def _split(text: str) -> list[str]:
    parts, start = [], 0
    for m in _SPLIT.finditer(text):
        parts.append(text[start:m.end() - 1])
        start = m.end()
    parts.append(text[start:])
    return parts
