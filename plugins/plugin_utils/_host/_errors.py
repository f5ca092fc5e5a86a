# PRIVATE to the crlfix.windows collection; may change without notice.
"""The one way an expected failure travels inside the plugins: raised as :class:`ExpectedFailure`.

Two boundaries catch it (docs/dev/architecture.md, "How a failure travels"): the action base turns it into a failed
task result, and the fix_crl host run records it as a failed step of the host record. Bad input is a ``ValueError``
naming the field (the parsers' convention); both boundaries treat it exactly like an ``ExpectedFailure``.
A broken transport is not an expected failure: it travels as ``AnsibleConnectionFailure`` and marks the host
unreachable.
"""

from __future__ import annotations

import typing as t


class ExpectedFailure(Exception):
    """An expected failure; ``fields`` are the keys the failed task result carries besides ``msg``.

    A helper that has half a result when it fails (a write refused by the compare-and-swap, a read-back that does
    not hold what was asked) raises it with that result as ``fields``, so the failed task still shows it.
    """

    def __init__(self, msg: str, **fields: t.Any) -> None:
        super().__init__(msg)
        self.fields = fields


class HostScriptError(ExpectedFailure):
    """A host script did not produce a document we can trust.

    Carries the raw ``rc``/``stdout``/``stderr`` as its fields, so the task result shows exactly what the host said.
    """

    def __init__(self, message: str, *, rc: int | None = None, stdout: str = "", stderr: str = "") -> None:
        super().__init__(message, rc=rc, stdout=stdout, stderr=stderr)


__all__ = ["ExpectedFailure", "HostScriptError"]
