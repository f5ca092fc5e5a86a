"""Put each forked Ansible worker under cProfile (bench/run.py --profile): only when BENCH_WORKER_PROFILE_DIR is set.

Python imports ``sitecustomize`` at startup from ``sys.path``; bench/run.py puts this directory first on PYTHONPATH of
the profiled ansible-playbook only. Each worker (ansible-core ``WorkerProcess._run``: one task on one host) writes
``worker-<pid>.prof`` there when its task is done, timed by the process's CPU clock (its waits for the host do not
count); bench/run.py adds them up with pstats. A measuring aid, never
loaded by the collection or its tests.
"""

from __future__ import annotations

import cProfile
import os
import time

_OUT = os.environ.get("BENCH_WORKER_PROFILE_DIR")

if _OUT:
    from ansible.executor.process import worker as _worker

    _original_run = _worker.WorkerProcess._run

    def _profiled_run(self):  # type: ignore[no-untyped-def]
        profile = cProfile.Profile(time.process_time)  # CPU: the wall clock would count the waits for the host
        profile.enable()
        try:
            return _original_run(self)
        finally:
            profile.disable()
            path = os.path.join(_OUT, f"worker-{os.getpid()}.prof")
            profile.dump_stats(path + ".tmp")
            os.replace(path + ".tmp", path)  # a file that is there is whole

    _worker.WorkerProcess._run = _profiled_run
