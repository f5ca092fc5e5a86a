"""Scheduled tasks as other identities: the twin's stand-in for ``_ps1/_identity_run.ps1``.

On Windows host_audit checks its work folder, registers one task per identity through Task Scheduler's COM API
(built-in service accounts with TASK_LOGON_SERVICE_ACCOUNT, a gMSA with TASK_LOGON_PASSWORD and no password;
community.windows win_scheduled_task), the task runs ``X509Chain.Build`` with ``RevocationMode.Online`` /
``EntireChain`` as that account, and the script waits for its result file until the runs' own deadline, then removes
task and folder.
Here each identity's run is a thread of this one command (never shared with another twin) that does what that task
would, with that identity's state:

- what Task Scheduler does first (``task_scheduler``): seconds of start latency, a logon refused for a gMSA without
  "Log on as a batch job" (0x80070569, no result), a ``-File`` action under a Group Policy execution policy, and, on
  a host class without the ScheduledTasks module, a script that calls its cmdlets fails before any task is made;
- the work folder's checks (``work_folder``): a planted folder, a junction or an inherited ACL stops the runs;
- its proxy (``identities.cryptoapi_proxy``: netsh, its own WinINet settings, WPAD, direct; KB 2623724),
- its own disk URL cache (``accounts[<sid>].url_cache``; CryptnetUrlCache lives in each account's profile,
  identity-evidence-research.md §7), purged first when asked (``certutil -urlcache * delete`` as that account),
- the host's ChainEngine retrieval timeouts, the lab's names and outbound policy.

Every task created is counted (``counters.scheduled_tasks``) and none is left: ``state["scheduled_tasks"]`` lists
leftovers a test seeds (an aborted run), and the next run removes them (``leftovers_removed``).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from tests.lab import cryptoapi, schannel
from tests.twin import identities, revocation, task_scheduler, work_folder
from tests.twin.state import HostState

SERVICE_ACCOUNT_SIDS = ("S-1-5-18", "S-1-5-19", "S-1-5-20")
DEADLINE_MS = 30000  # the script's identities.chain.deadline_ms default, and its bounds
MIN_DEADLINE_MS, MAX_DEADLINE_MS = 1000, 300000
ELEMENT_FLAGS = {cryptoapi.STATUS_OK: [], cryptoapi.STATUS_REVOKED: ["Revoked"],
                 cryptoapi.STATUS_OFFLINE: ["RevocationStatusUnknown", "OfflineRevocation"]}
CHAIN_FLAGS = {"CERT_TRUST_IS_REVOKED": "Revoked", "CERT_TRUST_REVOCATION_STATUS_UNKNOWN": "RevocationStatusUnknown",
               "CERT_TRUST_IS_OFFLINE_REVOCATION": "OfflineRevocation"}


def runnable(account: dict[str, Any]) -> bool:
    """``Test-CrlfixRunnableAccount``: a built-in service account, or a gMSA (name ends in $)."""
    return bool(account.get("sid")) and (account["sid"] in SERVICE_ACCOUNT_SIDS or account["name"].endswith("$"))


def targets(state: HostState, stores: list[str]) -> list[dict[str, Any]]:
    """``Get-CrlfixIdentityTargets``: every certificate with a private key in the named stores."""
    found = []
    for name in stores:
        for entry in state.data.get("cert_stores", {}).get(name, []):
            if entry.get("has_private_key"):
                found.append({"store": name, "der": base64.b64decode(entry["der_b64"])})
    return found


def _account_cache(state: HostState, sid: str) -> dict[str, dict[str, Any]]:
    entries = identities.accounts(state).get(sid, {}).get("url_cache", [])
    return {e["url"]: {k: v for k, v in e.items() if k != "url"} for e in entries
            if e.get("url") and e.get("content_b64") and e.get("next_update")}


def _save_cache(state: HostState, sid: str, before: dict, after: dict) -> None:
    changed = {url: entry for url, entry in after.items() if before.get(url) != entry}
    if not changed:
        return
    with state.lock:
        account = state.data["accounts"][sid]
        kept = [e for e in account.get("url_cache", []) if e.get("url") not in changed]
        account["url_cache"] = kept + [{"url": url, **entry} for url, entry in changed.items()]
        state.save()


def purge(state: HostState, sid: str) -> dict[str, Any]:
    """``certutil -urlcache * delete`` as the identity: empties its own cache only."""
    with state.lock:
        account = state.data["accounts"][sid]
        deleted = len(account.get("url_cache", []))
        account["url_cache"] = []
        counters = state.data.setdefault("counters", {})
        counters["urlcache_deletes"] = int(counters.get("urlcache_deletes", 0)) + 1
        state.save()
    return {"rc": 0, "output": f"{deleted} entries deleted\r\nCertUtil: -URLCache command completed successfully."}


def run_as(state: HostState, sid: str, certs: list[dict[str, Any]], purge_cache: bool,
           cancel: threading.Event) -> dict[str, Any]:
    """What the task writes to result.json: ``{purge, chains, error}``."""
    world = revocation.world()
    per_url, per_chain = revocation.retrieval_timeouts(state)
    result: dict[str, Any] = {"purge": purge(state, sid) if purge_cache else None, "chains": [], "error": None}
    stores = state.data.get("cert_stores", {})
    candidates = [base64.b64decode(c["der_b64"]) for name in ("CA", "Root") for c in stores.get(name, [])]
    for cert in certs:
        chain = schannel.build_chain(cert["der"], candidates)
        cache = _account_cache(state, sid)
        before = {url: dict(entry) for url, entry in cache.items()}
        checked = cryptoapi.check_chain_revocation(
            chain, proxy=identities.cryptoapi_proxy(state, sid)[1], names=world.names, cache=cache,
            per_url_timeout=per_url, total_timeout=per_chain, policy=world.policy, cancel=cancel, now=state.now())
        if cancel.is_set():
            raise TimeoutError("abandoned")  # the script stopped waiting; nothing of this run is kept
        _save_cache(state, sid, before, cache)
        leaf = x509.load_der_x509_certificate(cert["der"])
        result["chains"].append({
            "store": cert["store"], "thumbprint": hashlib.sha1(cert["der"]).hexdigest().upper(),
            "subject": leaf.subject.rfc4514_string(), "elapsed_ms": checked["elapsed_ms"],
            "status": [CHAIN_FLAGS[n] for n in checked["trust_status"] if n in CHAIN_FLAGS],
            "elements": [{"subject": e["subject"], "status": ELEMENT_FLAGS[e["status"]]} for e in checked["elements"]],
            "error": None})
    return result


def task(state: HostState, account: dict[str, Any], certs: list[dict[str, Any]], purge_cache: bool,
         cancel: threading.Event, facts: task_scheduler.ScriptFacts) -> dict[str, Any]:
    """One task, from Task Scheduler's start to its end: the run's document without ``elapsed_ms``."""
    started = time.monotonic()
    refused = task_scheduler.refused_start(state, account, facts)
    if refused is not None:
        code, seconds = refused
        if cancel.wait(seconds):
            raise TimeoutError("abandoned")
        return {"outcome": "no_result", "task_result": code, "hresult": None, "start_ms": None, "purge": None,
                "chains": [], "error": None, "ended": time.monotonic()}
    if cancel.wait(task_scheduler.start_seconds(state)):
        raise TimeoutError("abandoned")  # the script stopped waiting before powershell.exe was up
    start_ms = int((time.monotonic() - started) * 1000)
    try:
        answer = run_as(state, account["sid"], certs, purge_cache, cancel)
    except TimeoutError:
        raise
    except Exception as exc:  # the probe's own catch: its message in result.json  # noqa: BLE001
        answer = {"purge": None, "chains": [], "error": str(exc)}
    return {"outcome": "finished", "task_result": 0, "hresult": None, "start_ms": start_ms, **answer,
            "ended": time.monotonic()}


@dataclass
class IdentityRuns:
    """The started tasks of one host_audit (``Start-CrlfixIdentityRuns``), each on its own thread."""

    accounts: list[dict[str, Any]]
    part: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event)
    futures: dict[int, Future] = field(default_factory=dict)
    pool: ThreadPoolExecutor | None = None


def deadline_ms(chain: dict[str, Any]) -> int:
    """``Get-CrlfixIdentityDeadline``: ``deadline_ms`` checked (ValueError with the script's text)."""
    value = chain.get("deadline_ms", DEADLINE_MS)
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_DEADLINE_MS <= value <= MAX_DEADLINE_MS:
        raise ValueError(f"identities.chain.deadline_ms: expected an integer from {MIN_DEADLINE_MS} to "
                         f"{MAX_DEADLINE_MS}, got {value}")
    return value


def resync(state: HostState) -> dict[str, Any]:
    """``certutil -setreg chain\\ChainCacheResyncFiletime @now``: the FILETIME of now (8 bytes, little-endian) in
    ``state["chain_engine_resync"]`` (the value under ...\\CertDllCreateCertificateChainEngine\\Config); the
    certutil text is simplified."""
    filetime = int((state.epoch() + 11644473600) * 10_000_000)  # the host's clock
    written = base64.b64encode(filetime.to_bytes(8, "little")).decode("ascii")
    with state.lock:
        previous = state.data.get("chain_engine_resync")
        state.data["chain_engine_resync"] = written
        counters = state.data.setdefault("counters", {})
        counters["chain_resyncs"] = int(counters.get("chain_resyncs", 0)) + 1
        state.save()
    return {"previous_b64": previous, "written_b64": written, "rc": 0,
            "output": "CertUtil: -setreg command completed successfully."}


def start(state: HostState, part: dict[str, Any], chain: dict[str, Any], cancel: threading.Event) -> IdentityRuns:
    """``Start-CrlfixIdentityRuns``: the work folder checked, leftovers removed, the resync, then one task per runnable
    account (each counted as a task created). ``cancel`` ends the modelled waits of an abandoned run (the lab's
    shutdown sets it too)."""
    runs = IdentityRuns([], part=part, cancel=cancel)
    facts = task_scheduler.script_facts()
    part["work_folder"] = folder = work_folder.inspect(state, identities.CALLER_SID)
    part["leftovers_removed"] = 0
    missing = task_scheduler.missing_cmdlet_error(state, facts)
    if missing is not None:  # the script's first ScheduledTasks cmdlet, on a host without the module
        part["chain_error"] = missing
        return runs
    with state.lock:
        leftovers = list(state.data.get("scheduled_tasks") or [])
        state.data["scheduled_tasks"] = []
        state.save()
    part["leftovers_removed"] = len(leftovers) + work_folder.remove_leftovers(state, folder)
    if chain.get("resync"):
        part["resync"] = resync(state)
    certs = targets(state, [str(s) for s in chain.get("stores") or []])
    part["targets"] = len(certs)
    accounts = [a for a in part["accounts"] if runnable(a)]
    if not certs or not accounts:  # nothing to prove: no folder, no task (the script starts none either)
        return runs
    if not folder["existed"]:
        work_folder.create(folder)
    if not folder["trusted"]:  # the runs stop here: no task, nothing in the folder touched
        return runs
    runs.accounts = accounts
    runs.pool = ThreadPoolExecutor(max_workers=len(accounts), thread_name_prefix="identity_task")
    for account in accounts:
        state.bump("scheduled_tasks")
        runs.futures[id(account)] = runs.pool.submit(task, state, account, certs, bool(chain.get("purge_cache")),
                                                     runs.cancel, facts)
    return runs


def complete(state: HostState, runs: IdentityRuns, *, remaining_s: float, deadline: int) -> None:
    """``Complete-CrlfixIdentityRuns``: wait until ``remaining_s``, set each account's ``run``, abandon the rest, then
    the work folder is closed (removed when empty)."""
    if runs.pool is not None:
        wait(list(runs.futures.values()), timeout=max(0.0, remaining_s))
    for account in runs.accounts:
        future = runs.futures[id(account)]
        outcome: dict[str, Any] = {"outcome": "late", "task_result": None, "hresult": None,
                                   "elapsed_ms": int((time.monotonic() - runs.started) * 1000), "start_ms": None,
                                   "purge": None, "chains": [],
                                   "error": f"not finished within the deadline of {deadline} ms: the task was still "
                                            "running"}
        if future.done():
            answer = dict(future.result())  # a fault of the twin itself raises here instead of passing for late
            outcome.update(answer, elapsed_ms=int((answer.pop("ended") - runs.started) * 1000))
            outcome.pop("ended", None)
        account["run"] = outcome
    runs.cancel.set()
    if runs.pool is not None:
        runs.pool.shutdown(wait=False)
    if runs.part.get("work_folder") is not None:
        work_folder.close(state, runs.part["work_folder"])
