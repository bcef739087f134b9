"""The Neo4j I/O layer: the only package that imports the `neo4j` driver or writes Cypher.

Modules: ``connection`` (drivers, error translation, server info), ``admin``
(initial password, wipe, counts) and one module per stage that needs the graph.
"""

import sys


def _import_driver() -> None:
    """Import ``neo4j`` without letting it import pandas.

    The driver imports pandas at start-up when it is installed, only for
    ``Result.to_df()``, which this package never calls: 1.5 s of every ``etl``
    command (measured with ``python -X importtime -c "import neo4j"``: 1.69 s with
    pandas 3.1 installed, 0.2 s without). pandas stays importable afterwards, but
    this process's driver then cannot send ``pandas.Timestamp`` values (pyarrow's
    ``to_pylist()`` gives them for nanosecond timestamps when pandas is
    installed); a program that needs that imports pandas first and is left alone.
    """
    if "pandas" in sys.modules or "neo4j" in sys.modules:
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]  # makes `import pandas` fail
    try:
        import neo4j  # noqa: F401
    finally:
        del sys.modules["pandas"]


_import_driver()
