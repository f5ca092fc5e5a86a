"""Scheduled tasks as other identities: the twin's stand-in for ``_ps1/_identity_run.ps1``.

On Windows host_audit registers one task per identity (built-in service accounts with ``-LogonType ServiceAccount``,
a gMSA with ``Password`` and no password; identity-evidence-research.md §1.1), the task runs ``X509Chain.Build`` with
``RevocationMode.Online`` / ``EntireChain`` as that account, and the script waits for its result file, then removes
task and folder. Here each identity's run is a thread that does what that task would, with that identity's state:

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
from tests.twin import identities, revocation
from tests.twin.state import HostState

SERVICE_ACCOUNT_SIDS = ("S-1-5-18", "S-1-5-19", "S-1-5-20")
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
            per_url_timeout=per_url, total_timeout=per_chain, policy=world.policy, cancel=cancel)
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


@dataclass
class IdentityRuns:
    """The started tasks of one host_audit (``Start-CrlfixIdentityRun`` for each runnable account)."""

    accounts: list[dict[str, Any]]
    started: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event)
    futures: dict[int, Future] = field(default_factory=dict)
    pool: ThreadPoolExecutor | None = None


def resync(state: HostState) -> dict[str, Any]:
    """``certutil -setreg chain\\ChainCacheResyncFiletime @now``: the FILETIME of now (8 bytes, little-endian) in
    ``state["chain_engine_resync"]`` (the value under ...\\CertDllCreateCertificateChainEngine\\Config); the
    certutil text is simplified."""
    filetime = int((time.time() + 11644473600) * 10_000_000)
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
    """Remove leftovers, then start one run per runnable account (each counted as a task created). ``cancel`` ends
    the modelled waits of an abandoned run (the lab's shutdown sets it too)."""
    with state.lock:
        leftovers = list(state.data.get("scheduled_tasks") or [])
        state.data["scheduled_tasks"] = []
        state.save()
    part["leftovers_removed"] = len(leftovers)
    if chain.get("resync"):
        part["resync"] = resync(state)
    certs = targets(state, [str(s) for s in chain.get("stores") or []])
    # No certificate to prove: no task is created (the script starts none either).
    runs = IdentityRuns([a for a in part["accounts"] if runnable(a)] if certs else [], cancel=cancel)
    if runs.accounts:
        runs.pool = ThreadPoolExecutor(max_workers=len(runs.accounts), thread_name_prefix="identity_run")
        for account in runs.accounts:
            state.bump("scheduled_tasks")
            runs.futures[id(account)] = runs.pool.submit(run_as, state, account["sid"], certs,
                                                         bool(chain.get("purge_cache")), runs.cancel)
    return runs


def complete(runs: IdentityRuns, *, remaining_s: float, late_text: str) -> None:
    """``Complete-CrlfixIdentityRuns``: wait until ``remaining_s``, set each account's ``run``, abandon the rest."""
    if runs.pool is None:
        return
    wait(list(runs.futures.values()), timeout=max(0.0, remaining_s))
    for account in runs.accounts:
        future = runs.futures[id(account)]
        outcome: dict[str, Any] = {"task_result": None, "elapsed_ms": int((time.monotonic() - runs.started) * 1000),
                                   "purge": None, "chains": [], "error": None}
        if not future.done():
            outcome["error"] = late_text
        else:
            try:
                answer = future.result()
            except Exception as exc:  # the probe's own catch: its message in result.json  # noqa: BLE001
                outcome.update(task_result=0, error=str(exc))
            else:
                outcome.update(task_result=0, **answer)
        account["run"] = outcome
    runs.cancel.set()
    runs.pool.shutdown(wait=False)
