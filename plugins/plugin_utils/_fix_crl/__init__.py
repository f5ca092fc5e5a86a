# PRIVATE to the crlfix.windows collection; may change without notice.
"""The fix_crl role's host run: audit, plan, apply, judge, roll back, record."""
