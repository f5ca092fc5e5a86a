# PRIVATE to the crlfix.windows collection; may change without notice.
"""The fleet report: JSON, HTML and the merge of slices."""
