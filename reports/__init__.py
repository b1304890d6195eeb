"""Reports: charts, the self-contained HTML report, the markdown summary and reference accuracy.

Reports read the store; they never measure and never write the store.
"""
