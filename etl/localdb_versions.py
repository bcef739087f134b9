"""What each Neo4j version's offline importer takes from Parquet, as measured.

`neo4j-admin database import` reads Parquet differently from version to
version. The import files (``etl.offline_files``) write each stage column in a
form the importer keeps exactly, or leave it to be set online afterwards (a
"residual" column); which forms are safe depends on the version, so they ask
``import_capabilities(settings.neo4j_version)``.

Measured with ``tools/neo4j/probe_import.py VERSION`` (one column per import,
read back from the started server) and with the offline round-trip tests
(``tests/test_offline.py``: offline == online replay; the hostile-values round
trip) run under ``ETL_NEO4J_VERSION=VERSION``:

==============================  ==========  ==========  ==========
input form                      5.26.3      5.26.30     2026.08.1
==============================  ==========  ==========  ==========
native ``list<string>``         fails¹      kept²       kept²
``name:string[]`` joined        fails³      kept        kept
native ``list<int64>``          fails¹      fails⁸      fails⁴
native ``list<int64>`` as       –           kept        kept
``name:long[]``
``name:long[]`` joined          fails³      kept        kept
native ``date32``               integer⁵    kept        kept
``(`` ``)`` in a property name  dropped⁶    kept        kept
labels from ``:LABEL``          kept⁷       kept        kept
==============================  ==========  ==========  ==========

1. ``IllegalStateException: Unexpected repetition`` (the whole import fails).
2. except ``[]``, which comes back as a byte array (residual on every version).
3. ``IllegalArgumentException: [[Ljava.lang.Object;… is not a supported property value``.
4. ``IllegalArgumentException: [[1, 2]:java.util.ArrayList] is not a supported property
   value`` (under a plain header). ``–``: not measured (every native list fails there).
5. the day number comes back, as an INTEGER (``1066-10-14`` → ``-329893``).
6. ``MATCH (n) DETACH DELETE n //`` comes back as ``MATCH  DETACH DELETE n //``: the
   header parser takes ``(n)`` for an ID group.
7. for our files (one file per label set); Neo4j reported Parquet labels wrong up to
   5.26.25, so an offline import reconciles counts per label on every version.
8. as recorded in ``etl/offline_files.py`` (measured there, not by the probe).

With every 5.26.3 "fails", "integer" and "dropped" column set online (the import files'
residual path), the hostile round trip passes on 5.26.3 (measured on a scratch copy
whose ``_column_kind`` read this table), as it does unchanged on 5.26.30 and 2026.08.1.

Versions not measured get the capabilities of the nearest measured version
below them, and anything older than 5.26.30 the 5.26.3 row: the safe choice
(more columns set online, never a value lost).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ImportCapabilities:
    """Which Parquet input forms one version's importer keeps exactly."""

    #: the version these were measured on
    measured_on: str
    #: ``list<string>`` columns written natively (``[]`` is residual everywhere)
    native_string_lists: bool
    #: ``name:long[]`` / ``name:double[]`` text joined with ``--array-delimiter``
    joined_number_lists: bool
    #: ``list<int64>`` columns written natively under a typed header (``name:long[]``);
    #: measured for integers only, so the import files keep the joined form for now
    native_number_lists: bool
    #: ``date32`` columns written natively (5.26.3 gives back the day number, an integer)
    native_dates: bool
    #: property names with ``(`` or ``)`` in a header (5.26.3 drops the ``(…)`` part)
    parentheses_in_names: bool

    @property
    def any_lists(self) -> bool:
        """False: every list column must be set online (the importer takes none)."""
        return self.native_string_lists or self.joined_number_lists


#: Measured rows, oldest first (see the table above).
MEASURED: tuple[tuple[tuple[int, ...], ImportCapabilities], ...] = (
    ((5, 26, 3), ImportCapabilities("5.26.3", False, False, False, False, False)),
    ((5, 26, 30), ImportCapabilities("5.26.30", True, True, True, True, True)),
    ((2026, 8, 1), ImportCapabilities("2026.08.1", True, True, True, True, True)),
)


def version_key(version: str) -> tuple[int, ...]:
    """``"5.26.30"`` → ``(5, 26, 30)``; ``"2025.10.1"`` sorts after every 5.x."""
    parts = re.findall(r"\d+", version.split("-", 1)[0])
    return tuple(int(p) for p in parts) or (0,)


def import_capabilities(version: str) -> ImportCapabilities:
    """The capabilities of the nearest measured version at or below ``version``."""
    key = version_key(version)
    found = MEASURED[0][1]
    for measured, caps in MEASURED:
        if measured <= key:
            found = caps
    return found
