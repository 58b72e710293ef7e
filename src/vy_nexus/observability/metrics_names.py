"""The names of the metrics tables and of their PostgreSQL schema, importable without SQLAlchemy (the CLI's help text
needs them; the CLI loads SQLAlchemy only for the commands that read a database)."""

from __future__ import annotations

RAW_TABLES = ("tasks", "executions", "routing", "system", "llm")
"""The tables of recorded rows that ``vy-nexus metrics export`` and the ``metrics`` view cover."""

SERVER_SCHEMA = "vy_observability"
"""The PostgreSQL schema of the metrics (and of the shipped journal, journal_table.py)."""
