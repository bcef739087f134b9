"""The naive baselines, as child-process programs (so their peak RSS is their own).

* ``EXPORT``: per label/type ``session.run(...).data()`` → pandas (pyarrow when
  pandas is not installed) → ``to_parquet``: the afternoon version of
  ``etl export`` (it holds a whole label in Python objects at once).
* ``LOAD``: one row per auto-commit transaction (``MERGE`` a node with its
  properties; ``MATCH`` both ends, ``MERGE`` the relationship) on a sample of
  the transform stage's Events and NEXT_EVENT rows, into labels of its own
  that it deletes afterwards. Prints ``{"nodes_per_s", "relationships_per_s"}``.

Both live in bench_export.py / bench_load.py; this module names them for
bench_all.py.
"""

from __future__ import annotations

from bench.bench_export import CHILD_NAIVE as EXPORT
from bench.bench_load import BASELINE as LOAD

__all__ = ["EXPORT", "LOAD"]
