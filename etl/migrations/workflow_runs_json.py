"""Reading JSON strings column-wise, without ever raising on bad data.

Legacy ``Workflow.metadata`` and ``Event.data`` are JSON *strings*, and some are
broken: truncated, not objects, fields of the wrong type. Polars'
``str.json_decode`` needs one schema for the whole column and raises on the
first row that does not fit it (``{"number": "12"}`` against a Float64 field
aborts the lot), so it cannot sort good rows from bad ones.

``str.json_path_match`` can: it parses each row on its own and returns null
for a row that is not valid JSON. Everything here is built on it:

* ``root_kind`` classifies each document (``object``, ``array``, ``invalid`` …).
  ``json_path_match("$")`` is null exactly for invalid JSON and for the literal
  ``null``, which we tell apart by its text.
* ``field`` returns a value's text: a string's content, a container's compact
  JSON, null when absent *or* JSON null. It cannot tell ``12`` from ``"12"``.
* ``is_string``, ``is_number``, ``is_true`` and ``is_false`` tell types apart
  with JSONPath *filters* evaluated on the root object: a filter such as
  ``$[?(@.a >= '')]`` returns the document when the comparison holds, and a
  comparison only holds between values of the same JSON type (a string is
  ``>= ''``; every finite number is ``>= -f64::MAX``).

The type tests are only meaningful when the root is an object (on an array
root a filter looks at the elements), so callers mask them with
``root_kind(...) == "object"``. ``tests/migrations`` checks all of this
against Python's ``json`` module on generated documents.

The one per-row Python step is ``parser_messages``: it quotes the parser's
reason for documents already rejected as invalid, so it runs on rejected
rows only, never on the data that migrates.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import polars as pl

#: JSON's insignificant whitespace (RFC 8259); NOT Unicode whitespace in general.
JSON_WS = " \t\n\r"

# The most negative finite double: every JSON number (the parser refuses
# out-of-range ones such as 1e999) compares >= to it, and nothing else does.
_MIN_NUMBER = "-1.7976931348623157e308"


def root_kind(text: pl.Expr) -> pl.Expr:
    """What each JSON document is: ``missing`` (null), ``invalid``, ``object``,
    ``array``, ``string``, ``number``, ``boolean`` or ``null``."""
    stripped = text.str.strip_chars(JSON_WS)
    valid = text.str.json_path_match("$").is_not_null() | (stripped == "null")
    first = stripped.str.slice(0, 1)
    return (
        pl.when(text.is_null())
        .then(pl.lit("missing"))
        .when(~valid)
        .then(pl.lit("invalid"))
        # A valid JSON text's first character decides its type.
        .when(first == "{")
        .then(pl.lit("object"))
        .when(first == "[")
        .then(pl.lit("array"))
        .when(first == '"')
        .then(pl.lit("string"))
        .when(first.is_in(["t", "f"]))
        .then(pl.lit("boolean"))
        .when(first == "n")
        .then(pl.lit("null"))
        .otherwise(pl.lit("number"))
    )


def field(text: pl.Expr, path: str) -> pl.Expr:
    """The text of the value at ``path`` (dotted, e.g. ``"issue.number"``), or null."""
    return text.str.json_path_match(f"$.{path}")


def _holds(text: pl.Expr, condition: str) -> pl.Expr:
    return text.str.json_path_match(f"$[?({condition})]").is_not_null()


def is_string(text: pl.Expr, path: str) -> pl.Expr:
    """True where the value at ``path`` is a JSON string (root must be an object)."""
    return _holds(text, f"@.{path} >= ''")


def is_number(text: pl.Expr, path: str) -> pl.Expr:
    """True where the value at ``path`` is a JSON number (root must be an object)."""
    return _holds(text, f"@.{path} >= {_MIN_NUMBER}")


def is_true(text: pl.Expr, path: str) -> pl.Expr:
    """True where the value at ``path`` is the JSON literal ``true`` (not ``"true"``)."""
    return _holds(text, f"@.{path} == true")


def is_false(text: pl.Expr, path: str) -> pl.Expr:
    """True where the value at ``path`` is the JSON literal ``false``."""
    return _holds(text, f"@.{path} == false")


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def parser_message(text: str) -> str:
    """Why ``text`` is not JSON, in the words of Python's strict parser.

    Called only for rows ``root_kind`` found invalid. The two parsers agree on
    everything the legacy application could write; where Python is more lenient
    (lone surrogate escapes, numbers beyond double range, nesting deeper than
    128 levels) we say so instead of quoting a parser that accepted the text.
    """
    try:
        json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:  # JSONDecodeError is a ValueError
        return str(exc)
    except RecursionError:
        return "nesting too deep"
    return (
        "rejected by the strict JSON parser (a lone \\u surrogate escape, a number "
        "beyond double range, or nesting deeper than 128 levels)"
    )


def parser_messages(texts: Iterable[str | None]) -> list[str]:
    """``parser_message`` for each text (null texts are reported as missing)."""
    return ["no text" if t is None else parser_message(t) for t in texts]
