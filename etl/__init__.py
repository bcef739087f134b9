"""neo4j-etl: an offline export → transform → load pipeline for Neo4j graphs."""

__version__ = "0.1.0"
