"""The cause catalogue's scenarios: a host put, by the cause's own code, in the state where that cause holds.

Each name is a cause code of the collection's catalogue (plugins/plugin_utils/_fix_crl/_causes.py); ``views_disagree``
(a starting state) and ``stale_service`` (an extra scenario) already exist under that name, and two more codes are
starting states under other names (``ALIASES``). ``seed`` (tests/lab/fleet/catalogue.py) starts from the ``correct``
state, so the seeded cause is the host's only fault; several names combine (``lab.py seed --scenario a --scenario b``).
The world each one needs is the lab's (tests/lab/README.md, "The cause catalogue in the lab").

- ``no_proxy``: the ``direct`` starting state: netsh direct access in both views, every retrieval waits out its timeout.
- ``proxy_unreachable``: the ``wrong_proxy`` starting state: netsh names a proxy nobody answers (10.255.0.1:8080).
- ``identity_path``: the ``admin_ie_only`` scenario: netsh direct, the connecting admin has an IE proxy, the service
  identities go direct (KB 2623724).
- ``proxy_denies_agent``: netsh names the site squid's listener that lets only browsers' agents through, so it answers
  CryptoAPI's ``Microsoft-CryptoAPI/*`` with 403 (squid's browser ACL; jpsanders 2009: proxies filter by agent).
- ``proxy_requires_auth``: netsh names the site squid's listener that asks every request for Basic proxy credentials
  (407); neither CryptoAPI nor the audit's fetch answers a Basic challenge by itself (IWinHttpRequest::
  SetAutoLogonPolicy: automatic logon is NTLM/Negotiate only).
- ``proxy_cannot_reach_endpoint``: netsh names the lab's second squid, whose resolver answers NXDOMAIN for the public
  CA's names: squid's own gateway error (squid 5.7: 502 ``ERR_READ_ERROR``; its documentation: 503 ``ERR_DNS_FAIL``).
- ``endpoint_missing_at_source``: a second certificate of the Lab Branch Issuing CA, whose CRL was never published:
  404 from every host (TechNet PKI blog 2011).
- ``crl_expired_at_source``: a second certificate of the Lab Legacy Issuing CA, whose CRL's NextUpdate passed a day ago,
  the same from every host (coretekservices 2014).
- ``delta_crl_blocked``: a second certificate whose Freshest CRL is the issuing CA's delta under AD CS's default name
  with a ``+``, which the CDP's IIS refuses with 404.11 while it serves the base CRL (TechNet dd379478).
- ``crl_rejected``: a second certificate of the Lab Renewed Issuing CA, whose CRL is signed with the CA's next key: it
  does not verify with the certificate's issuer (gradenegger.eu).
- ``ocsp_responder_failing``: a second certificate of the Lab Partner Issuing CA, whose AIA names the lab's OCSP
  responder, which answers ``unauthorized`` for that CA (RFC 6960 2.3; TechNet cc770413); its CRL works.
- ``ldap_only_cdp``: a second certificate whose only CDP is the AD CS default ``ldap:///`` URL (KB 884115).
- ``https_cdp``: a second certificate whose CDP is ``https://`` (SupportArticles-docs PR 1246).
- ``clock_skew``: the host's clock runs eight hours ahead (``clock_offset_s``; a local time entered as UTC, say): its
  events, registry times and fix marker are stamped by it, and its chain engine finds the lab's CRLs expired (technet
  "instan" blog 2009).
- ``slow_chain_timeouts``: the ChainEngine policy raises the retrieval timeouts to 60 s per URL and 120 s per chain,
  over Windows' 15 s / 20 s defaults (KB 884115).
- ``non_self_signed_root``: the lab's issuing CA certificate (an intermediate) is in the Root store (uclobby 2015).
- ``trusted_issuer_list_too_large``: the Root store holds 100 more roots with long names, whose subject names sum over
  16 KB (KB 933430; the roots and their names are the lab's choice).
- ``root_autoupdate_blocked``: DisableRootAutoUpdate = 1 and the lab's public root missing from the Root store, so every
  peer's chain ends in a root the host lacks and cannot fetch (Microsoft Learn, "Configure trusted roots and disallowed
  certificates").
- ``gpo_overwrites_proxy``: the host's Group Policy history holds a Group Policy Preferences Registry item that writes
  WinHttpSettings (direct access, the value of the machine the item was captured on) in both views, and netsh holds that
  value ([MS-GPPREF] 2.2.1, 4.2.22; KB 201453 for the GPO's name).
- ``protocol_mismatch``: the host disabled TLS 1.0 and 1.1 (Schannel keeps TLS 1.2, and 1.3 where the class has it); a
  peer that speaks TLS 1.0 only (``tls10_peer``) then shares no protocol with it.
- ``ctl_blocked``: netsh names the site squid's listener that refuses the root certificate list's host
  ctldl.windowsupdate.com (403) and passes everything else (not a cause code: the second way root auto-update is
  blocked, for the controller's check of that URL).
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

from cryptography import x509

from tests.lab import cause_pki, pki
from tests.lab.squid import (
    AUTH_REQUIRED_ADDRESS,
    BROWSERS_ONLY_ADDRESS,
    CTL_BLOCKED_ADDRESS,
    NO_DNS_ADDRESS,
    filtered_proxy,
)
from tests.twin import winhttp_value
from tests.twin.state import utc_text

# Cause codes that are scenarios under another name: the starting states, and the extra scenario.
ALIASES = {"no_proxy": "direct", "proxy_unreachable": "wrong_proxy", "identity_path": "admin_ie_only"}
PROXY_LISTENERS = {"proxy_denies_agent": BROWSERS_ONLY_ADDRESS, "proxy_requires_auth": AUTH_REQUIRED_ADDRESS,
                   "proxy_cannot_reach_endpoint": NO_DNS_ADDRESS, "ctl_blocked": CTL_BLOCKED_ADDRESS}
CERTIFICATE_CAUSES = tuple(cause_pki.LEAVES)
CAUSE_SCENARIOS = (
    "no_proxy", "proxy_unreachable", "identity_path", *PROXY_LISTENERS, *CERTIFICATE_CAUSES, "clock_skew",
    "slow_chain_timeouts", "non_self_signed_root", "trusted_issuer_list_too_large", "root_autoupdate_blocked",
    "gpo_overwrites_proxy", "protocol_mismatch",
)
# What an audit of a seeded host must find, beside the seed (scripts/demo_causes.py, the lab's cause test):
# - a cause that fails nothing the audit measures is a risk of a host that passes (Windows falls back from a failing
#   OCSP responder to the CRL; raised timeouts only lengthen a failure; an LDAP-only certificate is excused; a Root
#   store entry breaks the host's own mutual-TLS clients, which the audit does not measure);
# - identity_path's scenario is netsh direct (a service identity's path differs from netsh only then: KB 2623724), so
#   it brings no_proxy, the primary cause the fix removes.
LATENT = frozenset({"ocsp_responder_failing", "ldap_only_cdp", "slow_chain_timeouts", "non_self_signed_root",
                    "trusted_issuer_list_too_large"})
BRINGS = {"identity_path": ("no_proxy",)}
CLOCK_SKEW_S = 8 * 3600  # past any CRL validity a lab publishes (pytest's session lab: 4 hours)
SLOW_TIMEOUTS = {"ChainUrlRetrievalTimeoutMilliseconds": 60000,
                 "ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds": 120000}
GPO_GUID = "{6AC1786C-016F-11D2-945F-00C04FB984F9}"
GPO_NAME = "Servers - Internet Settings (legacy)"
GPO_CHANGED = "2024-03-11 09:14:02"
CONNECTIONS_KEYS = ("SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections",
                    "SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections")
TLS_WITHOUT_10_11 = {20348: ["Tls12", "Tls13"]}  # by build; every other class keeps TLS 1.2 only


def expected(seed: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """(the record's key that names the seeded causes, ``diagnosis`` or ``risks``; the causes it must hold, those of
    its primary cause first): a seed of latent causes only leaves the host passing, with them as its risks."""
    if all(name in LATENT for name in seed):
        return "risks", seed
    return "diagnosis", tuple(dict.fromkeys(c for name in seed for c in (*BRINGS.get(name, ()), name)))


def site_proxy(scenario: str | tuple[str, ...], proxy: str) -> str | None:
    """The proxy a host seeded with ``scenario`` really goes through when it is a cause's proxy (the site's
    ``fix_crl_proxy`` to give an audit of it: the site uses that proxy), else None (the site's own, ``proxy``)."""
    names = (scenario,) if isinstance(scenario, str) else scenario
    listener = next((PROXY_LISTENERS[n] for n in names if n in PROXY_LISTENERS), None)
    return filtered_proxy(proxy, listener) if listener else None


def registry_xml(value: bytes, keys: tuple[str, ...] = CONNECTIONS_KEYS) -> str:
    """A Group Policy Preferences ``Registry.xml`` whose items write ``value`` as WinHttpSettings under ``keys``, in the
    form of [MS-GPPREF] 4.2.22's sample (RegistrySettings, Registry, Properties; REG_BINARY as hex text)."""
    items = "".join(
        f'<Registry clsid="{{9CD4B2F4-923D-47f5-A062-E897DD1DAD50}}" name="WinHttpSettings" status="WinHttpSettings" '
        f'image="17" changed="{GPO_CHANGED}" uid="{{0F9B1A{index:02d}-5C1E-4D4B-9E51-3D2A7C8B9E{index:02d}}}">'
        f'<Properties action="U" displayDecimal="0" default="0" hive="HKEY_LOCAL_MACHINE" key="{key}" '
        f'name="WinHttpSettings" type="REG_BINARY" value="{value.hex().upper()}"/></Registry>'
        for index, key in enumerate(keys))
    return ('<?xml version="1.0" encoding="utf-8"?>'
            f'<RegistrySettings clsid="{{A3CCFC41-DFDB-43a5-8D26-0FE8B954DA51}}">{items}</RegistrySettings>')


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _set_views(state: dict[str, Any], value: bytes) -> None:
    for view in ("native", "wow6432"):
        state["registry"][view]["WinHttpSettings"] = _b64(value)


def _add(state: dict[str, Any], store: str, entries: list[dict[str, Any]]) -> None:
    have = state.setdefault("cert_stores", {}).setdefault(store, [])
    known = {e["der_b64"] for e in have}
    have.extend(e for e in entries if e["der_b64"] not in known)


def _shift_times(state: dict[str, Any], seconds: float) -> None:
    """The registry's write times as a host whose clock is ``seconds`` off stamped them."""
    for view, text in (state.get("registry_write_times") or {}).items():
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        state["registry_write_times"][view] = utc_text(moment + seconds)


def apply_cause(state: dict[str, Any], name: str, *, proxy: str, lab_dir: Path | None) -> dict[str, Any]:
    """``state`` changed so that cause ``name`` holds (one of ``CAUSE_SCENARIOS`` not in ``ALIASES``); ``proxy`` is
    the site's working proxy, ``lab_dir`` the lab (its PKI) for the causes that need certificates."""
    if name in PROXY_LISTENERS:
        _set_views(state, winhttp_value.encode(0, filtered_proxy(proxy, PROXY_LISTENERS[name]), ""))
    elif name in CERTIFICATE_CAUSES or name in ("non_self_signed_root", "trusted_issuer_list_too_large",
                                                "root_autoupdate_blocked"):
        if lab_dir is None:
            raise ValueError(f"scenario {name}: needs the lab's directory (its PKI)")
        _apply_store_cause(state, name, Path(lab_dir))
    elif name == "clock_skew":
        state["clock_offset_s"] = CLOCK_SKEW_S
        _shift_times(state, CLOCK_SKEW_S)
    elif name == "slow_chain_timeouts":
        state["chain_engine"] = dict(SLOW_TIMEOUTS)
    elif name == "gpo_overwrites_proxy":
        value = winhttp_value.DIRECT_ACCESS_DOCUMENTED
        state["group_policy_history"] = {GPO_GUID: {"display_name": GPO_NAME, "registry_xml": registry_xml(value)}}
        _set_views(state, value)
    elif name == "protocol_mismatch":
        build = int(state["os"]["build"])
        overrides = dict(state["os"].get("overrides") or {})
        overrides["tls_protocols"] = TLS_WITHOUT_10_11.get(build, ["Tls12"])
        state["os"] = {**state["os"], "overrides": overrides}
    else:
        raise ValueError(f"scenario: expected one of {', '.join(CAUSE_SCENARIOS)}, got {name!r}")
    return state


def _apply_store_cause(state: dict[str, Any], name: str, lab_dir: Path) -> None:
    fqdn = state.get("fqdn") or state["inventory_name"]
    if name in CERTIFICATE_CAUSES:
        for store, entries in cause_pki.cause_certificate(lab_dir, fqdn, name).items():
            _add(state, store, entries)
    elif name == "non_self_signed_root":
        _add(state, "Root", [cause_pki.intermediate_as_root(lab_dir)])
    elif name == "trusted_issuer_list_too_large":
        _add(state, "Root", cause_pki.large_root_store(lab_dir))
    else:  # root_autoupdate_blocked
        root = pki.LabCA(lab_dir).root_cert
        state["cert_stores"]["Root"] = [e for e in state["cert_stores"].get("Root", [])
                                        if x509.load_der_x509_certificate(base64.b64decode(e["der_b64"])) != root]
        state["auth_root_policy"] = {"DisableRootAutoUpdate": 1}


def reset(state: dict[str, Any], lab_dir: Path | None, chain_engine: dict[str, int]) -> None:
    """What a cause scenario may have changed, back to the lab's build: the stores, the clock, the chain engine's
    timeouts, the AuthRoot policy, the Group Policy history (``catalogue.seed`` starts every scenario from here)."""
    for key in ("clock_offset_s", "auth_root_policy", "group_policy_history"):
        state.pop(key, None)
    state["chain_engine"] = dict(chain_engine)
    if lab_dir is not None:
        fqdn = state.get("fqdn") or state["inventory_name"]
        state["cert_stores"] = pki.issue_host_certificates(Path(lab_dir), [fqdn])[fqdn]


__all__ = ["ALIASES", "CAUSE_SCENARIOS", "CLOCK_SKEW_S", "apply_cause", "registry_xml", "reset", "site_proxy"]
