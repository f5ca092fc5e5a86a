# PRIVATE to the crlfix.windows collection; may change without notice.
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a file so that a reader never sees half of it: temp file in the same directory, then rename."""

from __future__ import annotations

import os
import tempfile


def write_text_atomic(path: str, text: str, *, mode: int = 0o644) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temp file and ``os.replace``.

    The temp file lives in the target directory so the rename never crosses file systems; it is removed
    when anything fails. ``mode`` is applied before the rename (mkstemp creates files as 0600).
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


__all__ = ["write_text_atomic"]
