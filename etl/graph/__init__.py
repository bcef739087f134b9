"""The Neo4j I/O layer: the only package that imports the `neo4j` driver or writes Cypher.

Modules: ``connection`` (drivers, error translation, server info), ``admin``
(initial password, wipe, counts) and one module per stage that needs the graph.
"""
