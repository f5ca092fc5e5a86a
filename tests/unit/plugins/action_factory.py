"""Build one of the collection's action plugins the way the task executor does, for tests at the seam."""

from __future__ import annotations

import typing as t
from unittest.mock import MagicMock

from ansible.playbook.task import Task

A = t.TypeVar("A")


def make_action(action_class: type[A], action: str, args: dict[str, t.Any], *, check_mode: bool = False,
                diff: bool = False) -> A:
    """An ``action_class`` instance for a task ``action`` with ``args``; the connection is a MagicMock.

    Tests monkeypatch ``_host_script.run_powershell`` (the one remote seam), so the connection is never used.
    """
    task = MagicMock(Task)
    task.args = args
    task.check_mode = check_mode
    task.diff = diff
    task.async_val = 0
    task.action = action
    play_context = MagicMock()
    play_context.check_mode = check_mode
    return action_class(task, MagicMock(), play_context, loader=None, templar=None, shared_loader_obj=None)
