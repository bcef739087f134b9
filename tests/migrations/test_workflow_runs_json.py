"""The column-wise JSON reader agrees with Python's ``json`` module, and never raises."""

from __future__ import annotations

import json
import os
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.migrations.workflow_runs_json import (
    field,
    is_false,
    is_number,
    is_string,
    is_true,
    parser_message,
    root_kind,
)

pytestmark = pytest.mark.unit

EXAMPLES = {"dev": 60, "ci": 200, "thorough": 2000}.get(
    os.environ.get("HYPOTHESIS_PROFILE", "dev"), 60
)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (None, "missing"),
        ("", "invalid"),
        ("{", "invalid"),
        ("{'a': 1}", "invalid"),
        ('{"a": NaN}', "invalid"),
        ('{"a": 1} trailing', "invalid"),
        ("\ufeff{}", "invalid"),
        (' \n{"a": 1}\n', "object"),
        ("[1]", "array"),
        ('"x"', "string"),
        ('""', "string"),
        ("-0.5e3", "number"),
        ("true", "boolean"),
        ("null", "null"),
        (" null ", "null"),
    ],
)
def test_root_kind(text: str | None, kind: str) -> None:
    df = pl.DataFrame({"t": [text]}, schema={"t": pl.String})
    assert df.select(root_kind(pl.col("t"))).item() == kind


def test_parser_message_quotes_pythons_reason_or_explains_the_disagreement() -> None:
    assert (
        parser_message("{")
        == "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )
    assert parser_message('{"a": NaN}').startswith("NaN is not a JSON number")
    # Python accepts a lone surrogate escape; the column reader does not.
    assert parser_message('{"a": "\\ud800"}').startswith("rejected by the strict JSON parser")


# JSON values as Python produces them; no NaN/inf (not JSON), no surrogates (not UTF-8).
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["12", "true", "{}", "[1]", "o/r", "", " "])
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "number", "x y", "é"]), inner, max_size=3)
    ),
    max_leaves=8,
)
_docs = st.dictionaries(st.sampled_from(["a", "b", "c"]), _values, max_size=3)


def _expected_text(value: str | bool) -> str:
    """What ``field`` returns for a string (its content) or a boolean (its literal)."""
    return value if isinstance(value, str) else json.dumps(value)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(b, bool):
        return bool(a == pytest.approx(b, rel=1e-15, abs=1e-300))
    return bool(a == b and type(a) is type(b))


def _lookup(doc: Any, path: list[str]) -> tuple[bool, Any]:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return False, None
        doc = doc[key]
    return True, doc


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(_docs, min_size=1, max_size=8))
def test_types_and_texts_match_python(docs: list[dict[str, Any]]) -> None:
    texts = [json.dumps(d, ensure_ascii=bool(i % 2)) for i, d in enumerate(docs)]
    t = pl.col("t")
    for path in (["a"], ["a", "b"], ["a", "number"]):
        dotted = ".".join(path)
        got = pl.DataFrame({"t": texts}).select(
            kind=root_kind(t),
            text=field(t, dotted),
            string=is_string(t, dotted),
            number=is_number(t, dotted),
            true=is_true(t, dotted),
            false=is_false(t, dotted),
        )
        for doc, row in zip(docs, got.iter_rows(named=True), strict=True):
            assert row["kind"] == "object"
            found, value = _lookup(doc, path)
            assert row["string"] == (found and isinstance(value, str)), (doc, path)
            assert row["number"] == (
                found and isinstance(value, int | float) and not isinstance(value, bool)
            ), (doc, path)
            assert row["true"] == (found and value is True), (doc, path)
            assert row["false"] == (found and value is False), (doc, path)
            if found and isinstance(value, str | bool):
                assert row["text"] == _expected_text(value), (doc, path)
            elif found and value is not None:
                # Containers come back as compact JSON, numbers maybe spelled otherwise
                # (12 vs 12.0), and the parser may round a float's last digit.
                assert _close(json.loads(row["text"]), value), (doc, path, row["text"])
            else:
                assert row["text"] is None


@settings(max_examples=EXAMPLES, deadline=None)
@given(texts=st.lists(st.text(max_size=30) | st.none(), min_size=1, max_size=10))
def test_arbitrary_text_never_raises_and_validity_matches_python(texts: list[str | None]) -> None:
    kinds = pl.DataFrame({"t": texts}, schema={"t": pl.String}).select(root_kind(pl.col("t")))
    for text, kind in zip(texts, kinds.to_series().to_list(), strict=True):
        if text is None:
            assert kind == "missing"
            continue
        try:
            json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
            python_valid = True
        except ValueError:
            python_valid = False
        assert (kind != "invalid") == python_valid, text
