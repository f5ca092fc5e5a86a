"""Shared pytest setup: make ``ansible_collections.crlfix.windows`` importable from the checkout.

`make setup` links the checkout to ``.collections/ansible_collections/crlfix/windows``; putting
``.collections`` on ``sys.path`` lets tests import the collection exactly as ansible does.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS_DIR = REPO_ROOT / ".collections"
_LINK = COLLECTIONS_DIR / "ansible_collections" / "crlfix" / "windows"

if not _LINK.exists():  # pragma: no cover - only when pytest runs without `make setup`
    _LINK.parent.mkdir(parents=True, exist_ok=True)
    _LINK.symlink_to(REPO_ROOT)

if str(COLLECTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_DIR))
