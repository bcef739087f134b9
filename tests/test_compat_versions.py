"""The offline importer's capability table: the nearest measured version at or below."""

from __future__ import annotations

import pytest

from etl.localdb_versions import MEASURED, import_capabilities, version_key

pytestmark = pytest.mark.unit


def test_versions_sort_numerically_and_calendar_after_5x() -> None:
    assert version_key("5.26.30") > version_key("5.26.4") > version_key("5.26.3")
    assert version_key("2025.01.0") > version_key("5.26.30")
    assert version_key("2026.08.1") > version_key("2025.10.1")
    assert [key for key, _ in MEASURED] == sorted(key for key, _ in MEASURED)


@pytest.mark.parametrize(
    ("version", "measured_on"),
    [
        ("5.20.0", "5.26.3"),  # older than anything measured: the safest row
        ("5.26.3", "5.26.3"),
        ("5.26.29", "5.26.3"),  # not measured: the row below, never a better one
        ("5.26.30", "5.26.30"),
        ("2025.10.1", "5.26.30"),
        ("2026.08.1", "2026.08.1"),
        ("2027.01.0", "2026.08.1"),
    ],
)
def test_an_unmeasured_version_gets_the_row_below(version: str, measured_on: str) -> None:
    assert import_capabilities(version).measured_on == measured_on


def test_5_26_3_takes_no_list_column() -> None:
    caps = import_capabilities("5.26.3")
    assert not caps.any_lists
    assert import_capabilities("5.26.30").any_lists


def test_the_import_files_leave_to_the_fix_up_what_a_version_loses() -> None:
    """5.26.3 loses lists, dates and ``(…)`` in names: those columns go residual there only."""
    import pyarrow as pa

    from etl.offline_files import _for_version

    old, pinned = import_capabilities("5.26.3"), import_capabilities("5.26.30")
    cases = [
        ("strings", pa.field("tags", pa.list_(pa.string()))),
        ("long[]", pa.field("sizes", pa.list_(pa.int64()))),
        ("native", pa.field("born", pa.date32())),
        ("string", pa.field("MATCH (n) DETACH DELETE n //", pa.string())),
    ]
    for kind, field_ in cases:
        assert _for_version(kind, field_, old) == "residual", field_
        assert _for_version(kind, field_, pinned) == kind, field_
    plain = pa.field("title", pa.string())
    assert _for_version("string", plain, old) == "string"
