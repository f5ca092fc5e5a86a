# PRIVATE to the crlfix.windows collection; may change without notice.
"""Host I/O: the one remote seam, the host scripts and their documents, the errors they raise."""
