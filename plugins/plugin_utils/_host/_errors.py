# PRIVATE to the crlfix.windows collection; may change without notice.
"""The two expected failures a helper raises; the action base turns each into a failed task result.

A broken transport is not one of them: it travels as ``AnsibleConnectionFailure`` and marks the host unreachable.
"""

from __future__ import annotations

import typing as t


class HostScriptError(Exception):
    """A host script did not produce a document we can trust.

    Carries the raw ``rc``/``stdout``/``stderr`` so the task result can show exactly what the host said.
    """

    def __init__(self, message: str, *, rc: int | None = None, stdout: str = "", stderr: str = "") -> None:
        super().__init__(message)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def result_fields(self) -> dict[str, t.Any]:
        """The fields a failed task result carries besides ``msg``."""
        return {"rc": self.rc, "stdout": self.stdout, "stderr": self.stderr}


class ReturnResult(Exception):
    """An expected failure raised deep in a helper, carrying the fields of the task result."""

    def __init__(self, msg: str, **result: t.Any) -> None:
        super().__init__(msg)
        self.result = result


__all__ = ["HostScriptError", "ReturnResult"]
