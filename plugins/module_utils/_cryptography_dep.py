# PRIVATE to the crlfix.windows collection; may change without notice.
"""Whether the controller has ``cryptography``, and the message to show when it does not.

Every certificate and CRL parser of the collection needs ``cryptography``; it is
imported here once, in ``try``, so that importing a plugin never fails and the
error reaches the user as a task failure naming the missing library.
Model: community.crypto ``plugins/module_utils/_cryptography_dep.py``.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import missing_required_lib

# x509.Certificate.verify_directly_issued_by and the *_utc properties the parsers
# use appeared in cryptography 42.
MINIMUM_CRYPTOGRAPHY_VERSION = "42.0"

CRYPTOGRAPHY_IMPORT_ERROR: str | None = None
CRYPTOGRAPHY_VERSION: str | None = None
try:
    import cryptography
    from cryptography import x509  # noqa: F401, pylint: disable=unused-import
except ImportError:
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
    HAS_CRYPTOGRAPHY = False
else:
    CRYPTOGRAPHY_VERSION = cryptography.__version__
    HAS_CRYPTOGRAPHY = True


class MissingCryptographyError(Exception):
    """``cryptography`` is not importable (or too old) on the controller.

    ``traceback`` holds the original import error for the task's ``exception`` field.
    """

    def __init__(self, message: str, traceback_text: str | None = None) -> None:
        super().__init__(message)
        self.traceback = traceback_text


def _version_tuple(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def cryptography_missing_message(*, minimum: str = MINIMUM_CRYPTOGRAPHY_VERSION) -> str | None:
    """Return why ``cryptography`` cannot be used, or ``None`` when it can.

    The text is Ansible's usual ``missing_required_lib`` message (it names the
    interpreter that lacks the library), or a version complaint.
    """
    if not HAS_CRYPTOGRAPHY:
        return missing_required_lib(f"cryptography >= {minimum}")
    if CRYPTOGRAPHY_VERSION and _version_tuple(CRYPTOGRAPHY_VERSION) < _version_tuple(minimum):
        return (f"the Python library cryptography >= {minimum} is required on the controller, "
                f"found {CRYPTOGRAPHY_VERSION}")
    return None


def require_cryptography() -> None:
    """Raise :class:`MissingCryptographyError` unless ``cryptography`` is usable."""
    message = cryptography_missing_message()
    if message is not None:
        raise MissingCryptographyError(message, CRYPTOGRAPHY_IMPORT_ERROR)


__all__ = [
    "CRYPTOGRAPHY_IMPORT_ERROR",
    "CRYPTOGRAPHY_VERSION",
    "HAS_CRYPTOGRAPHY",
    "MINIMUM_CRYPTOGRAPHY_VERSION",
    "MissingCryptographyError",
    "cryptography_missing_message",
    "require_cryptography",
]
