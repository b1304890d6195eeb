"""Results: the SQLite store (schema, migrations, resume), statistics and comparison verdicts.

This package never measures anything.
"""
