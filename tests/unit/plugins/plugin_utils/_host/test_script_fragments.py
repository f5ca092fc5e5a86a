"""Only the fragments the arguments call for go to the host (_script.FRAGMENT_NEEDS), and never one a call needs.

A fragment left home is safe only if the script calls its functions under the argument that brings it: nothing here
runs PowerShell, so host_audit.ps1 is read with tree-sitter: every call into an optional fragment must sit inside an
``if`` (or a ``foreach``) over a variable that is null or empty without that argument (GUARDS, read by hand from
host_audit.ps1), and a fragment that calls another must need it whenever it goes itself.
"""

from __future__ import annotations

import itertools
import re

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import (
    FRAGMENT_NEEDS,
    PS1_DIR,
    SCRIPT_FRAGMENTS,
    build_host_script,
    script_fragments,
)
from tests import pslint

# For each optional fragment of host_audit, the variables whose tests keep its calls from running without its argument:
# $identityRequest / $wpadRequest / $identityChain are the identities argument and its keys (null when absent),
# $wpadDiscovery / $identityRuns / $identitySession / $fetch / $probes are set only inside those guards, $urls and
# $fetchableCount stay
# empty without crl, $peers without tls.
GUARDS = {
    "_winhttp": [r"-Name 'winhttp'"],
    "_identity": [r"\$identityRequest\b"],
    "_wpad": [r"\$wpadRequest\b", r"\$wpadDiscovery\b"],
    "_identity_run": [r"\$identityChain\b", r"\$identityRuns\b", r"\$identitySession\b"],
    "_stores": [r"\$CrlfixArgs\.stores\b"],
    "_der": [r"\$CrlfixArgs\.stores\b"],
    "_crl": [r"\$crl\b", r"\$CrlfixArgs\.stores\b", r"\$urls\b", r"\$fetch\b"],
    "_pool": [r"\$fetchableCount\b"],  # crl URLs or tls peers
    "_tls": [r"\$peers\b", r"\$probes\b"],
    "_evidence": [r"\$CrlfixArgs\.evidence\b"],
}


def defined_in(fragment: str) -> set[str]:
    root = pslint.parse((PS1_DIR / f"{fragment}.ps1").read_text(encoding="ascii")).root_node
    return {name.lower() for name in pslint.functions(root)}


def guards_around(node) -> list[str]:
    """The conditions of the ``if`` blocks and the collections of the ``foreach`` loops ``node`` runs inside."""
    found, child, parent = [], node, node.parent
    while parent is not None:
        if parent.type == "if_statement" and child.type == "statement_block":
            condition = next(c for c in parent.children if c.type == "pipeline")
            found.append(pslint.text(condition))
        if parent.type == "foreach_statement":
            found.append(pslint.text(parent).split(")", 1)[0])
        child, parent = parent, parent.parent
    return found


@pytest.mark.parametrize("fragment", sorted(FRAGMENT_NEEDS["host_audit"]))
def test_host_audit_calls_an_optional_fragment_only_under_its_argument(fragment) -> None:
    functions = defined_in(fragment)
    root = pslint.parse((PS1_DIR / "host_audit.ps1").read_text(encoding="ascii")).root_node
    calls = [command for command in pslint.commands(root) if (pslint.command_name(command) or "").lower() in functions]
    assert calls or fragment in ("_winhttp", "_der", "_stores") or defined_in(fragment), fragment
    for call in calls:
        guards = guards_around(call)
        assert any(re.search(pattern, guard) for pattern in GUARDS[fragment] for guard in guards), (
            f"{pslint.command_name(call)} (of {fragment}) runs outside {GUARDS[fragment]}: {guards}")


def argument_sets() -> list[dict]:
    """Every combination of host_audit's optional arguments, present or absent."""
    identities = [None, {}, {"wpad": {}}, {"chain": {}}, {"wpad": {}, "chain": {}}]
    sets = []
    for winhttp, ident, stores, crl, tls, evidence in itertools.product(
            [None, True, False], identities, [None, ["My"]], [None, {}], [None, {"peers": []}], [None, {}]):
        args = {"winhttp": winhttp, "identities": ident, "stores": stores, "crl": crl, "tls": tls, "evidence": evidence}
        sets.append({key: value for key, value in args.items() if value is not None})
    return sets


def test_a_fragment_that_goes_brings_every_fragment_it_calls() -> None:
    callers = {fragment: pslint.parse((PS1_DIR / f"{fragment}.ps1").read_text(encoding="ascii")).root_node
               for fragment in SCRIPT_FRAGMENTS["host_audit"]}
    for args in argument_sets():
        sent = set(script_fragments("host_audit", args))
        for fragment in sent:
            called = {(pslint.command_name(c) or "").lower() for c in pslint.commands(callers[fragment])}
            for other in set(SCRIPT_FRAGMENTS["host_audit"]) - sent - {fragment}:
                assert not called & defined_in(other), (fragment, other, args)


def test_all_arguments_send_every_fragment_and_none_only_the_registry_views() -> None:
    full = {"winhttp": True, "identities": {"wpad": {}, "chain": {}}, "stores": ["My"], "crl": {}, "tls": {},
            "evidence": {}}
    assert script_fragments("host_audit", full) == SCRIPT_FRAGMENTS["host_audit"]
    assert script_fragments("host_audit", {}) == ("_winhttp",)
    assert script_fragments("host_audit", {"winhttp": False}) == ()
    assert script_fragments("host_audit", {"stores": ["My"], "winhttp": False}) == ("_stores", "_der", "_pool", "_crl")
    assert script_fragments("cert_inventory", {"stores": ["My"]}) == ("_stores",)
    assert script_fragments("winhttp_state", {}) == ("_winhttp",)


def test_a_fragment_left_home_is_not_in_the_script() -> None:
    lean = build_host_script("host_audit", {"stores": ["My"], "crl": {}})
    assert "function Start-CrlfixProbes" not in lean and "function Get-CrlfixEvidence" not in lean
    assert "function Start-CrlfixFetch" in lean and "function Read-CrlfixCertificateStores" in lean
