"""Per-task wall time and result counts of one ansible-playbook run, for the fleet benchmark.

Enabled only by `bench/run.py` (``ANSIBLE_CALLBACK_PLUGINS`` + ``ANSIBLE_CALLBACKS_ENABLED=bench_timing``);
writes ``$BENCH_TIMING_OUT`` as JSON when the playbook ends. A task's wall time runs from its start to the
start of the next task (or the end of the play), which with the linear strategy is the time the whole fleet
spends on it, controller overhead included.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ansible.module_utils.common.json import AnsibleJSONEncoder
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_timing
type: aggregate
short_description: per-task wall time for bench/run.py
description: Writes per-task wall time, result counts and result sizes to $BENCH_TIMING_OUT.
requirements: [enabled in configuration]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._tasks: dict[str, dict[str, Any]] = {}
        self._current: str | None = None
        self._since = 0.0
        self._began = time.monotonic()

    def _close_current(self) -> None:
        if self._current is not None:
            self._tasks[self._current]["wall_s"] += time.monotonic() - self._since
            self._current = None

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._close_current()
        # Include files run their tasks once per include; tasks are keyed by name + action so the repeats add up.
        key = f"{task.get_name()} [{task.action}]"
        self._tasks.setdefault(key, {"task": task.get_name(), "action": task.action, "wall_s": 0.0,
                                     "starts": 0, "results": 0, "skipped": 0, "res_bytes": 0, "res_bytes_max": 0})
        self._tasks[key]["starts"] += 1
        self._current = key
        self._since = time.monotonic()

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._close_current()

    def _count(self, result: Any, skipped: bool = False) -> None:
        if self._current is not None:
            task = self._tasks[self._current]
            task["results"] += 1
            if skipped:
                task["skipped"] += 1
            # What AWX stores of this host's result: ansible-runner's awx_display callback puts the result the
            # callbacks receive (result._result) into the job event's "res" and serialises it as JSON.
            size = len(json.dumps(result._result, cls=AnsibleJSONEncoder).encode("utf-8"))
            task["res_bytes"] += size
            task["res_bytes_max"] = max(task["res_bytes_max"], size)

    def v2_runner_on_ok(self, result: Any) -> None:
        self._count(result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._count(result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._count(result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._count(result, skipped=True)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._close_current()
        path = os.environ.get("BENCH_TIMING_OUT")
        if not path:
            return
        doc = {"total_s": round(time.monotonic() - self._began, 3),
               "tasks": [{**t, "wall_s": round(t["wall_s"], 3)} for t in self._tasks.values()]}
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=1)
