# Developer tool, not part of the collection's interface: the action scripts/record_host.py runs on each host.
"""Record what a Windows host answers to every host script and to the reads the twin models.

Runs on the controller inside ``ansible-playbook`` (scripts/record_host.py writes the play), so the host is reached
over the inventory's own connection and through the collection's one seam, ``run_powershell``: exactly as the
modules reach it. Every answer is written raw (``rc``, ``stdout``, ``stderr`` as the seam returned them) into one JSON
file per command, with the arguments and the module options it was built from; ``manifest.json`` lists them.

Nothing here writes to the host: no cache purge; ``winhttp_apply`` only with ``apply_conflict`` and an expectation no
host can hold, so the host's compare refuses every operation (docs/dev/real-windows.md).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
import time
import typing as t
from pathlib import Path

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.crlfix.windows.plugins.plugin_utils import _cert_revocation, _crl_retrieval, _tls_probe
from ansible_collections.crlfix.windows.plugins.plugin_utils._action import module_defaults
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _audit
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import HostScriptError
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._powershell import run_powershell
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import (
    build_host_script,
    parse_host_document,
)

TASK_ACTION = "record_host"
# The tls_probe module's own default (its DOCUMENTATION): the verdict the replay judges handshakes by.
MAX_HANDSHAKE_MS: int = module_defaults("tls_probe")["max_handshake_ms"]
CONNECTIONS_KEY = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections"
# What no WinHttpSettings value can be (it is binary and starts with a version DWORD): the compare refuses.
IMPOSSIBLE_EXPECTATION = base64.b64encode(b"crlfix record_host: never a WinHttpSettings value").decode("ascii")
# The native reads: the ones the twin models first (replayed through the controller's parsers), then the ones only a
# real host can answer (recorded for docs/dev/real-windows.md; the twin answers them "not recognized").
NATIVE_READS: tuple[tuple[str, str, bool], ...] = (
    ("netsh_show_proxy_native", '& "$env:windir\\System32\\netsh.exe" winhttp show proxy', True),
    ("netsh_show_proxy_wow6432", '& "$env:windir\\SysWOW64\\netsh.exe" winhttp show proxy', True),
    ("netsh_show_advproxy", '& "$env:windir\\System32\\netsh.exe" winhttp show advproxy', True),
    ("reg_query_native", f'reg.exe query "{CONNECTIONS_KEY}" /v WinHttpSettings /reg:64', True),
    ("reg_query_wow6432", f'reg.exe query "{CONNECTIONS_KEY}" /v WinHttpSettings /reg:32', True),
    ("certutil_urlcache", "certutil.exe -urlcache *", True),
    ("hostname", "hostname.exe", True),
    ("winhttprequest_threading_model",
     'reg.exe query "HKCR\\CLSID\\{2087C2F4-2CEF-4953-A8AB-66779B670495}\\InprocServer32" /v ThreadingModel', False),
    ("dotnet_system_default_tls",
     'reg.exe query "HKLM\\SOFTWARE\\Microsoft\\.NETFramework\\v4.0.30319" /v SystemDefaultTlsVersions', False),
    ("dotnet_release",
     'reg.exe query "HKLM\\SOFTWARE\\Microsoft\\NET Framework Setup\\NDP\\v4\\Full" /v Release', False),
)


class Recorder:
    """Runs one command at a time through the seam and keeps what came back."""

    def __init__(self, connection: t.Any, folder: Path) -> None:
        self.connection = connection
        self.folder = folder
        self.entries: list[dict[str, t.Any]] = []

    def run(self, label: str, kind: str, text: str, **meta: t.Any) -> dict[str, t.Any]:
        """Send ``text`` (a host script or a command line) as one remote command and keep its answer."""
        started = time.monotonic()
        rc, stdout, stderr = run_powershell(self.connection, text, task_action=TASK_ACTION)
        entry = {"id": f"{len(self.entries) + 1:02d}-{label}", "kind": kind, **meta, "rc": rc, "stdout": stdout,
                 "stderr": stderr, "controller_elapsed_ms": int((time.monotonic() - started) * 1000)}
        self.entries.append(entry)
        return entry

    def script(self, name: str, args: dict[str, t.Any], options: dict[str, t.Any] | None = None,
               label: str | None = None) -> dict[str, t.Any] | None:
        """Run host script ``name``; returns its checked document, or None when the host did not give one."""
        entry = self.run(label or name, "script", build_host_script(name, args), script=name, args=args,
                         options=options)
        try:
            return parse_host_document(name, entry["rc"], entry["stdout"], entry["stderr"])
        except HostScriptError:
            return None


def _record(recorder: Recorder, options: dict[str, t.Any], now: datetime.datetime) -> None:
    recorder.script("winhttp_state", {})

    cert_options = {"cert_stores": options["stores"], "chain_stores": options["chain_stores"], "include_winhttp": True}
    validated = _cert_revocation.validate_options(cert_options)
    inventory = recorder.script("cert_inventory", validated.script_args(), cert_options)
    endpoints: list[dict[str, t.Any]] = []
    if inventory is not None:
        summary = _cert_revocation.summarise_inventory(inventory, validated, now=now)
        endpoints = [{"url": e["url"], "kind": e["kind"]} for e in summary["endpoints"]
                     if e["url"].lower().startswith(("http://", "https://"))]

    if endpoints:
        crl_options = {"endpoints": endpoints, "crl_timeout_ms": options["crl_timeout_ms"], "purge_cache": False,
                       "max_bytes": _audit.CRL_MAX_BYTES}
        plan = _crl_retrieval.plan_fetch(crl_options, check_mode=True)
        recorder.script("crl_fetch", plan.host_args() or {}, crl_options)

    peers = _tls_probe.normalize_peers(options["peers"]) if options["peers"] else []
    tls_options = {"peers": options["peers"], "probe_samples": options["samples"],
                   "probe_timeout_ms": options["probe_timeout_ms"], "check_revocation": True,
                   "max_handshake_ms": MAX_HANDSHAKE_MS}
    if peers:
        tls_args = _tls_probe.host_args(peers, samples=options["samples"], timeout_ms=options["probe_timeout_ms"],
                                        check_revocation=True)
        recorder.script("tls_probe", tls_args, tls_options)

    audit_options = {"cert_options": cert_options, "crl_timeout_ms": options["crl_timeout_ms"],
                     "max_bytes": _audit.CRL_MAX_BYTES, "tls": tls_options,
                     "time_box_ms": options["time_box_ms"]}
    request = _audit.HostAuditRequest(
        cert_options=validated, endpoints=(), crl_timeout_ms=options["crl_timeout_ms"], purge_cache=False,
        max_bytes=_audit.CRL_MAX_BYTES, peers=tuple(peers), samples=options["samples"],
        probe_timeout_ms=options["probe_timeout_ms"], max_handshake_ms=MAX_HANDSHAKE_MS,
        check_revocation=True, stop_after_unknown=True, time_box_ms=options["time_box_ms"])
    recorder.script("host_audit", _audit.host_args(request, check_mode=True), audit_options)

    if options["apply_conflict"]:
        operations = [{"view": "native", "action": "reset", "expect_b64": IMPOSSIBLE_EXPECTATION}]
        recorder.script("winhttp_apply", {"operations": operations}, label="winhttp_apply_conflict")

    for label, command, twin_models in NATIVE_READS:
        recorder.run(label, "command", command, command=command, twin_models=twin_models)


def _mask(entries: list[dict[str, t.Any]], names: list[str]) -> dict[str, str]:
    """Replace the host's names and the certificates' thumbprints in every recorded text, consistently.

    A name is replaced only where it stands alone (not inside a longer word, a hex string or base64), and never
    inside a ``*_b64`` value. Certificates stay as DER (the names inside cannot be changed without breaking their
    signatures): masking hides what a reader sees in the texts, not what a parser can read from the certificates.
    Returns original -> placeholder.
    """
    replacements: dict[str, str] = {}
    for name in sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True):
        replacements.setdefault(name.lower(), "masked-host.example.invalid" if "." in name else "masked-host")
    for entry in entries:
        for document in _documents(entry):
            for entries_of_store in (document.get("stores") or {}).values():
                for certificate in entries_of_store:
                    digest = hashlib.sha1(base64.b64decode(certificate["der_b64"])).hexdigest()  # noqa: S324
                    replacements.setdefault(digest, f"masked-thumbprint-{len(replacements) + 1:02d}")
    patterns = [(re.compile(rf"(?<![A-Za-z0-9]){re.escape(original)}(?![A-Za-z0-9])", re.IGNORECASE), masked)
                for original, masked in replacements.items()]

    def scrub(text: str) -> str:
        for pattern, masked in patterns:
            text = pattern.sub(masked, text)
        return text

    def scrub_value(value: t.Any, key: str = "") -> t.Any:
        if isinstance(value, dict):
            return {k: scrub_value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub_value(v, key) for v in value]
        if isinstance(value, str) and not key.endswith("_b64"):
            return scrub(value)
        return value

    def scrub_line(line: str) -> str:
        try:
            document = json.loads(line)
        except ValueError:
            return scrub(line)
        return json.dumps(scrub_value(document), separators=(",", ":")) if isinstance(document, dict) else scrub(line)

    for entry in entries:
        entry["stdout"] = "\r\n".join(scrub_line(line) for line in entry["stdout"].split("\r\n"))
        entry["stderr"] = scrub(entry["stderr"])
    return dict(replacements)


def _documents(entry: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """The cert_inventory documents inside a recorded answer (alone, or as host_audit's part)."""
    if entry.get("script") not in ("cert_inventory", "host_audit") or entry["rc"] != 0:
        return []
    try:
        document = json.loads(entry["stdout"].strip().splitlines()[-1])
    except (ValueError, IndexError):
        return []
    part = document.get("certificates") if entry["script"] == "host_audit" else document
    return [part] if isinstance(part, dict) and "stores" in part else []


class ActionModule(ActionBase):
    _VALID_ARGS = frozenset(("out_dir", "name", "mask", "source", "host_kind", "stores", "chain_stores", "peers",
                             "samples", "crl_timeout_ms", "probe_timeout_ms", "time_box_ms", "apply_conflict"))

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        unknown = set(args) - self._VALID_ARGS
        if unknown:
            raise AnsibleActionFail(f"unknown options: {sorted(unknown)}")
        folder = Path(args["out_dir"]) / args["name"]
        if folder.exists() and any(folder.iterdir()):
            raise AnsibleActionFail(f"{folder} exists and is not empty; choose another --name or remove it")
        folder.mkdir(parents=True, exist_ok=True)
        options = {"stores": args.get("stores") or ["My"], "chain_stores": args.get("chain_stores") or ["CA", "Root"],
                   "peers": args.get("peers") or [], "samples": int(args.get("samples", 1)),
                   "crl_timeout_ms": int(args.get("crl_timeout_ms", 15000)),
                   "probe_timeout_ms": int(args.get("probe_timeout_ms", 20000)),
                   "time_box_ms": args.get("time_box_ms"), "apply_conflict": bool(args.get("apply_conflict"))}
        now = datetime.datetime.now(datetime.UTC)
        recorder = Recorder(self._connection, folder)
        _record(recorder, options, now)

        if args.get("mask"):
            names = [task_vars.get("inventory_hostname", ""), str(task_vars.get("ansible_host", ""))]
            for entry in recorder.entries:
                if entry.get("script") == "winhttp_state" and entry["rc"] == 0:
                    names.append(json.loads(entry["stdout"].strip().splitlines()[-1]).get("computer_name", ""))
                if entry["id"].endswith("-hostname") and entry["rc"] == 0:
                    names.append(entry["stdout"].strip())
            _mask(recorder.entries, names)

        for entry in recorder.entries:
            (folder / f"{entry['id']}.json").write_text(json.dumps(entry, indent=1, sort_keys=True) + "\n")
        manifest = {
            "recorded_with": "scripts/record_host.py",
            "recorded_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "host": args["name"],
            "host_kind": args.get("host_kind", "windows"),
            "source": args.get("source") or "not given (record_host.py --source)",
            "connection": task_vars.get("ansible_connection", "winrm"),
            "masked": bool(args.get("mask")),
            "options": options,
            "recordings": [{"id": e["id"], "kind": e["kind"], "script": e.get("script"), "command": e.get("command"),
                            "rc": e["rc"]} for e in recorder.entries],
        }
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        return {"changed": False, "folder": str(folder), "recordings": len(recorder.entries)}
