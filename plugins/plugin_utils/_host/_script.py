# PRIVATE to the crlfix.windows collection; may change without notice.
"""Build, run and check the collection's host scripts (docs/dev/host-scripts.md).

A host script is ``plugins/plugin_utils/_host/_ps1/<name>.ps1``; it runs with the
shared ``_common.ps1`` in front of it and prints exactly one JSON document
``{"script": <name>, "schema": <int>, ...}``.
"""

from __future__ import annotations

import json
import re
import typing as t
from pathlib import Path

from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import HostScriptError
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._minify import minify
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._powershell import run_powershell

if t.TYPE_CHECKING:
    from ansible.plugins.connection import ConnectionBase

PS1_DIR = Path(__file__).resolve().parent / "_ps1"
# PowerShell treats the typographic single quotes (U+2018 to U+201B) as quote characters too (about_Quoting_Rules),
# so each must be doubled like the ASCII one, or a value such as "x<U+2018>; Remove-Item ..." would close the literal.
_SINGLE_QUOTES = ("'", "\u2018", "\u2019", "\u201a", "\u201b")


def quote_pwsh_literal(value: str) -> str:
    """``value`` as a single-quoted PowerShell string literal: verbatim in PowerShell (no variable expansion, no
    subexpressions, no escape characters); only the single quotes are special, and they are escaped by doubling.
    This is how a script's arguments reach the host: one quoted JSON literal, so no value can execute anything."""
    if not isinstance(value, str):
        raise TypeError(f"quote_pwsh_literal expects str, got {type(value).__name__}")
    quoted = value
    for quote in _SINGLE_QUOTES:
        quoted = quoted.replace(quote, quote * 2)
    return f"'{quoted}'"


# The schema versions of each script this controller code understands. A host
# that answers with another version (an older collection's script left behind,
# a twin of another release) is refused rather than misread.
SUPPORTED_SCHEMAS: dict[str, frozenset[int]] = {
    "winhttp_state": frozenset({1}),
    "winhttp_apply": frozenset({1, 2}),
    "cert_inventory": frozenset({1, 2}),
    "crl_fetch": frozenset({1}),
    "tls_probe": frozenset({1}),
    "host_audit": frozenset({1, 2}),
    "service_restart": frozenset({1}),
}
SCRIPT_SCHEMA: dict[str, int] = {name: max(versions) for name, versions in SUPPORTED_SCHEMAS.items()}
# Shared PowerShell pieces (``_ps1/_<name>.ps1``) a script needs between ``_common.ps1`` and its own body, in order:
# ``_winhttp`` the registry views and the OS, ``_identity`` the services' accounts and their WinINet settings, ``_wpad``
# WinHTTP's WPAD discovery for them,
# ``_stores`` the store loop, ``_identity_run`` the chain built as each identity (a one-shot scheduled task), ``_der``
# the URL extraction, ``_pool`` the runspace pool and the one wait, ``_crl`` and ``_tls`` the fetch and probe engines
# (docs/dev/host-scripts.md).
SCRIPT_FRAGMENTS: dict[str, tuple[str, ...]] = {
    "winhttp_state": ("_winhttp",),
    "winhttp_apply": ("_winhttp",),
    "cert_inventory": ("_winhttp", "_stores"),
    "crl_fetch": ("_pool", "_crl"),
    "tls_probe": ("_pool", "_tls"),
    "host_audit": ("_winhttp", "_identity", "_wpad", "_stores", "_identity_run", "_der", "_pool", "_crl", "_tls",
                   "_evidence"),
    "service_restart": ("_pool", "_tls"),
}


def _given(args: t.Mapping[str, t.Any], *path: str) -> bool:
    """True when the argument at ``path`` is there and not null (what the scripts test with ``$null -ne``)."""
    value: t.Any = args
    for key in path:
        if not isinstance(value, t.Mapping) or value.get(key) is None:
            return False
        value = value[key]
    return True


# The fragments a script needs only for some of its arguments, and when (docs/dev/host-scripts.md, "How a script
# reaches the host"): the script calls a fragment's functions only under that argument, so without it the fragment
# stays home (test_ps1_review.py holds host_audit.ps1's calls to these guards). Every other fragment always goes.
FRAGMENT_NEEDS: dict[str, dict[str, t.Callable[[t.Mapping[str, t.Any]], bool]]] = {
    "host_audit": {
        # the registry views: the winhttp part (default on), and the registry keys evidence and identities open
        "_winhttp": lambda a: a.get("winhttp") is not False or _given(a, "identities") or _given(a, "evidence"),
        "_identity": lambda a: _given(a, "identities"),
        "_wpad": lambda a: _given(a, "identities", "wpad"),
        "_identity_run": lambda a: _given(a, "identities", "chain"),
        "_stores": lambda a: _given(a, "stores"),
        "_der": lambda a: _given(a, "stores"),
        # the fetch engine (its URL test also picks the extracted URLs) and the pool its functions use
        "_crl": lambda a: _given(a, "crl") or _given(a, "stores"),
        "_pool": lambda a: _given(a, "crl") or _given(a, "stores") or _given(a, "tls"),
        "_tls": lambda a: _given(a, "tls"),
        "_evidence": lambda a: _given(a, "evidence"),
    },
    "cert_inventory": {"_winhttp": lambda a: bool(a.get("winhttp"))},
}


def script_fragments(name: str, args: t.Mapping[str, t.Any]) -> tuple[str, ...]:
    """The fragments script ``name`` needs for ``args``, in their order."""
    needs = FRAGMENT_NEEDS.get(name, {})
    return tuple(part for part in SCRIPT_FRAGMENTS.get(name, ()) if part not in needs or needs[part](args))


# --- host floor (docs/dev/host-scripts.md, "The floor") ---
# Fragments that run before the $CrlfixArgs line, written for any PowerShell (2.0 up) and language mode: the floor
# check of the audit's one command, which ends the script with its own document on a host below the floor.
SCRIPT_PREAMBLES: dict[str, tuple[str, ...]] = {"host_audit": ("_host_floor",)}
# --- end host floor ---


# The text a host script gives a CRL URL or TLS sample its time box cut off (host_audit; host-scripts.md),
# optionally as interpret_peer lists it in a peer's errors ("sample 2: <text>").
_TIME_BOX_ERROR = re.compile(r"^(?:sample [0-9]+: )?not finished within the audit's time box of [0-9]+ ms$")


def time_box_error(time_box_ms: int) -> str:
    """The error text the host gives a CRL URL or TLS sample its time box cut off (exactly; host-scripts.md)."""
    return f"not finished within the audit's time box of {time_box_ms} ms"


def is_time_box_error(text: t.Any) -> bool:
    """True for an error text produced by a time box (in a CRL result's ``error`` or a peer's ``errors`` entry)."""
    return isinstance(text, str) and _TIME_BOX_ERROR.fullmatch(text) is not None


class HostScript(str):
    """A host script as built: the text as written (the string itself, what tests and the log read) and ``minified``,
    the same script as it goes on the wire (``_powershell.py``), made from the parts minified once per process."""

    minified: str

    def __new__(cls, readable: str, minified: str) -> HostScript:
        script = super().__new__(cls, readable)
        script.minified = minified
        return script


# path -> (text as written, minified): each part is read and minified once per process.
_PARTS: dict[Path, tuple[str, str]] = {}


def _part(name: str) -> tuple[str, str]:
    path = PS1_DIR / f"{name}.ps1"
    cached = _PARTS.get(path)
    if cached is None:
        text = path.read_text(encoding="utf-8")
        cached = _PARTS[path] = (text, minify(text))
    return cached


def _read_ps1(name: str) -> str:
    return _part(name)[0]


def build_host_script(name: str, args: t.Mapping[str, t.Any]) -> HostScript:
    """Return the full text of host script ``name`` with ``args`` embedded (and, as ``.minified``, the same script
    without what PowerShell does not need).

    ``args`` travel only as one quoted PowerShell literal holding compact JSON,
    read back on the host with ``ConvertFrom-Json``; nothing else of the user's
    input reaches the script text.
    """
    if name not in SCRIPT_SCHEMA:
        raise ValueError(f"unknown host script {name!r}")
    payload = json.dumps(dict(args), separators=(",", ":"), ensure_ascii=True, sort_keys=True)
    preambles = [_part(part) for part in SCRIPT_PREAMBLES.get(name, ())]
    heading = [f"# crlfix-script: {name}", f"# crlfix-schema: {SCRIPT_SCHEMA[name]}"]
    arguments = f"$CrlfixArgs = ConvertFrom-Json -InputObject {quote_pwsh_literal(payload)}"
    parts = [_part(part) for part in ("_common", *script_fragments(name, args), name)]
    readable = ("\n".join([*heading, *(text for text, _sent in preambles), arguments]) + "\n"
                + "\n".join(text for text, _sent in parts))
    # Each part is whole (no string or comment runs from one into the next), so minifying part by part gives what
    # minifying the whole script would (test_minify.py holds them equal).
    minified = "".join([minify("\n".join(heading)), *(sent for _text, sent in preambles), minify(arguments),
                        *(sent for _text, sent in parts)])
    return HostScript(readable, minified)


def parse_host_document(name: str, rc: int, stdout: str, stderr: str) -> dict[str, t.Any]:
    """Check and decode what host script ``name`` printed.

    Raises:
        HostScriptError: non-zero exit code, no JSON document, or a document of
            another script or an unknown schema version.
    """
    if rc != 0:
        detail = (stderr or stdout).strip() or "no output"
        raise HostScriptError(f"host script {name} failed with rc {rc}: {detail}", rc=rc, stdout=stdout, stderr=stderr)
    text = stdout.strip()
    # Windows PowerShell may print a profile banner or warnings before the
    # document; the document is always the last non-empty line.
    last_line = text.splitlines()[-1] if text else ""
    try:
        document = json.loads(last_line)
    except ValueError:
        raise HostScriptError(
            f"host script {name} did not print a JSON document: {text[:200]!r}", rc=rc, stdout=stdout, stderr=stderr
        ) from None
    if not isinstance(document, dict):
        raise HostScriptError(f"host script {name} printed {type(document).__name__}, not an object", rc=rc,
                              stdout=stdout, stderr=stderr)
    got_name = document.get("script")
    got_schema = document.get("schema")
    if got_name != name:
        raise HostScriptError(f"expected a document of host script {name}, got script={got_name!r}", rc=rc,
                              stdout=stdout, stderr=stderr)
    if got_schema not in SUPPORTED_SCHEMAS[name]:
        raise HostScriptError(
            f"host script {name} answered with schema {got_schema!r}; this collection understands "
            f"{sorted(SUPPORTED_SCHEMAS[name])}",
            rc=rc, stdout=stdout, stderr=stderr,
        )
    return document


def check_sub_document(parent: str, key: str, name: str, value: t.Any) -> dict[str, t.Any]:
    """Check a document nested in another script's document (``host_audit``'s parts).

    Raises:
        HostScriptError: ``value`` is not a document of script ``name`` in a schema this collection knows.
    """
    if not isinstance(value, dict):
        raise HostScriptError(f"host script {parent}: '{key}' must be a {name} document, got {value!r:.80}")
    got_name, got_schema = value.get("script"), value.get("schema")
    if got_name != name or got_schema not in SUPPORTED_SCHEMAS[name]:
        raise HostScriptError(f"host script {parent}: '{key}' holds script={got_name!r} schema={got_schema!r}, "
                              f"expected {name} schema {sorted(SUPPORTED_SCHEMAS[name])}")
    return value


def run_host_script(
    connection: ConnectionBase, name: str, args: t.Mapping[str, t.Any], *, task_action: str
) -> dict[str, t.Any]:
    """Run host script ``name`` in one remote command and return its checked document."""
    rc, stdout, stderr = run_powershell(connection, build_host_script(name, args), task_action=task_action)
    return parse_host_document(name, rc, stdout, stderr)


# Read and minified now, when the action plugin is imported: ansible-playbook imports it before it forks the per-host
# workers, which then share the result instead of each minifying about 100 KB of PowerShell (docs/performance.md).
for _name in {*SCRIPT_SCHEMA, *(p for parts in (*SCRIPT_FRAGMENTS.values(), *SCRIPT_PREAMBLES.values()) for p in parts),
              "_common"}:
    _part(_name)

__all__ = ["FRAGMENT_NEEDS", "HostScript", "PS1_DIR", "SCRIPT_FRAGMENTS", "SCRIPT_PREAMBLES", "SUPPORTED_SCHEMAS",
           "build_host_script", "check_sub_document", "is_time_box_error", "parse_host_document", "quote_pwsh_literal",
           "run_host_script", "script_fragments", "time_box_error"]
