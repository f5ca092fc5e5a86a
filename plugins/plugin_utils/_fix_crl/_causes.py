# PRIVATE to the crlfix.windows collection; may change without notice.
"""The cause catalogue: why a host's revocation checks fail, whose it is to fix, and how; one table, one rule each.

A cause is data (:class:`Cause`: its code, its words, its owner, its fix, whether this collection fixes it, what
decides it and where it is described) plus one small rule that reads a host record (:class:`HostView`) and returns
what it saw, or nothing when the cause does not hold. :func:`diagnose` runs every rule in catalogue order, so the
first cause that holds is the primary one; a host whose checks fail and whose evidence fits no cause is
``undetermined``, with what was seen. A compliant host has no diagnosis; the causes that hold on it all the same
(:func:`risks`) fail nothing today and are named as its risks. Everything a rule reads was read by the
audit's one remote command (docs/fix-crl.md, "Diagnosis"); the rules live here, with the judge (``_judge``,
``_findings``, ``_decide``), because a cause is a verdict too.

Owners: ``server`` (Windows/server admins), ``network`` (proxy, firewall, DNS), ``pki`` (the CA and its publication),
``application`` (the product's own revocation policy).
"""

from __future__ import annotations

import dataclasses
import typing as t

from ansible_collections.crlfix.windows.plugins.module_utils._proxy_values import bypass_key, proxy_key
from ansible_collections.crlfix.windows.plugins.module_utils._winhttp_settings import (
    WinHttpSettingsError,
    parse_winhttp_settings,
    value_to_bytes,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._judge import truncate

OWNERS = ("server", "network", "pki", "application")
GATEWAY = (502, 503, 504)
# Windows accepts a clock this far from the domain's before Kerberos fails (Microsoft Learn, "Maximum tolerance for
# computer clock synchronization", default 5 minutes); a CRL's ThisUpdate/NextUpdate is judged by the same clock.
MAX_CLOCK_SKEW_S = 300
# Schannel sends the Root store's subject names as the trusted issuer list; past 16 KB it is cut or the handshake
# fails (KB 933430; KB 2464556 for Windows Server 2008 R2 and later: SendTrustedIssuerList).
MAX_ISSUER_LIST_BYTES = 16384


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What a rule saw: the words, and the keys an incident groups hosts by (``url``, ``proxy``)."""

    text: str
    url: str | None = None
    proxy: str | None = None


class HostView:
    """A host record, read for diagnosis: the measurement whose failure is explained, and the host's evidence.

    The phase explained is the one before any change for a host that needs (or got) the proxy, else the last one
    measured: the checks that failed are the ones that count.
    """

    def __init__(self, record: t.Mapping[str, t.Any]) -> None:
        self.record = record
        checks = record.get("checks") or {}
        if record.get("status") == "would_change":
            self.phase = "before"  # what the proxy the run would set is meant to fix
        elif record.get("status") == "rolled_back":
            self.phase = "after"  # the new proxy's failure, which the rollback undid
        else:
            self.phase = next((p for p in ("after_rollback", "after", "before") if p in checks), "before")
        self.check = checks.get(self.phase) or {}

    @property
    def crl(self) -> list[dict[str, t.Any]]:
        return [r for r in (self.check.get("crl") or {}).get("results") or [] if isinstance(r, dict)]

    @property
    def tls(self) -> list[dict[str, t.Any]]:
        return [r for r in (self.check.get("tls") or {}).get("results") or [] if isinstance(r, dict)]

    @property
    def views(self) -> dict[str, dict[str, t.Any]]:
        """The registry views as they were during the phase explained: as read before any change, or, for the
        measurement after the change, as the run set them (the desired value in the views it wrote)."""
        before = {name: view for name, view in ((self.record.get("before") or {}).get("views") or {}).items() if view}
        desired = self.record.get("desired") or {}
        if self.phase == "before" or not desired:
            return before
        written = (self.record.get("planned") or {}).get("views") or []
        mode = "proxy" if desired.get("state") != "absent" and desired.get("proxy") else "direct"
        return {name: ({"mode": mode, "proxy": desired.get("proxy") if mode == "proxy" else None}
                       if name in written else view) for name, view in before.items()}

    @property
    def evidence(self) -> dict[str, t.Any]:
        return self.record.get("evidence") or {}

    @property
    def proxy(self) -> str | None:
        """The proxy the host's machine path goes through (the native view's), or None when it goes direct."""
        native = self.views.get("native") or {}
        return native.get("proxy") if native.get("mode") == "proxy" else None

    def findings(self, code: str) -> list[dict[str, t.Any]]:
        return [f for f in self.record.get("findings") or [] if f.get("code") == code]

    @property
    def failing(self) -> bool:
        """The host's proof fails, or something it found fails it. Not a compliant host, nor one this run fixed and
        proved (changed), nor one the run lost (unreachable: the connection, not the revocation path, failed)."""
        return self.record.get("status") in ("would_change", "failed", "rolled_back")


Rule: t.TypeAlias = t.Callable[[HostView], list[Evidence]]


@dataclasses.dataclass(frozen=True)
class Cause:
    code: str
    title: str  # the cause in words, as a host's reason starts
    owner: str
    fix: str
    fixable_here: bool
    decides: str  # the evidence that decides it
    source: str
    rule: Rule = dataclasses.field(repr=False, compare=False)


def _failed(result: t.Mapping[str, t.Any]) -> bool:
    return not result.get("usable")


def _error(result: t.Mapping[str, t.Any]) -> str:
    return truncate(result.get("error") or f"HTTP {result.get('http_status')}", 120)


# ---- the rules: each reads the record and says what it saw ----

def _clock_skew(host: HostView) -> list[Evidence]:
    clock = host.evidence.get("clock") or {}
    skew = clock.get("skew_s")
    if isinstance(skew, int | float) and abs(skew) > MAX_CLOCK_SKEW_S:
        way = "ahead of" if skew > 0 else "behind"
        return [Evidence(f"the host's clock ({clock.get('host_at')}) is {abs(round(skew))} s {way} the controller's "
                         f"({clock.get('controller_at')})")]
    return []


def _gpo_value(item: t.Mapping[str, t.Any], desired: t.Mapping[str, t.Any]) -> str | None:
    """What a GPP item writes, in words, when that is not the desired setting (None: it writes the desired one)."""
    try:
        value = parse_winhttp_settings(value_to_bytes(str(item.get("value") or ""), encoding="hex"))
    except WinHttpSettingsError:
        return "a value that does not decode"
    wanted_proxy = desired.get("proxy") if desired.get("state", "present") != "absent" else None
    if value.mode == "direct":
        return None if not wanted_proxy else "direct access"
    same = (wanted_proxy and proxy_key(value.proxy) == proxy_key(wanted_proxy)
            and bypass_key(value.bypass_list) == bypass_key(desired.get("bypass") or []))
    return None if same else f"proxy {value.proxy}"


def _gpo_overwrites_proxy(host: HostView) -> list[Evidence]:
    out = []
    for item in host.evidence.get("gpp_registry") or []:
        if str(item.get("name", "")).casefold() != "winhttpsettings" or str(item.get("action")) == "D":
            continue
        writes = _gpo_value(item, host.record.get("desired") or {})
        if writes is not None:  # a GPO that writes the desired setting enforces the fix
            out.append(Evidence(f"the Group Policy Preferences item of {item.get('gpo_name') or item.get('gpo')} "
                                f"({item.get('action')}) writes WinHttpSettings ({writes}) at every refresh"))
    return out


def _no_proxy(host: HostView) -> list[Evidence]:
    direct = [name for name, view in host.views.items() if view.get("mode") != "proxy"]
    if not direct or len(direct) < len(host.views):
        return []
    timed_out = [r for r in host.crl if _failed(r) and r.get("http_status") is None]
    if not timed_out and host.crl:
        return []
    seen = f"; {timed_out[0].get('url')}: {_error(timed_out[0])}" if timed_out else ""
    return [Evidence(f"netsh: direct access in {', '.join(direct)}{seen}")]


def _views_disagree(host: HostView) -> list[Evidence]:
    modes = {name: view.get("proxy") or "direct" for name, view in host.views.items()}
    if len(set(modes.values())) > 1:
        return [Evidence("the views disagree: " + ", ".join(f"{name} {mode}" for name, mode in modes.items()))]
    return []


def _proxy_unreachable(host: HostView) -> list[Evidence]:
    proxy = host.proxy
    failed = [r for r in host.crl if _failed(r) and r.get("http_status") is None]
    if proxy is None or not failed or len(failed) < len([r for r in host.crl if r.get("url")]):
        return []
    return [Evidence(f"every URL failed without an HTTP answer through {proxy} ({failed[0].get('url')}: "
                     f"{_error(failed[0])})", proxy=proxy)]


def _status_rule(statuses: tuple[int, ...], words: str) -> Rule:
    def rule(host: HostView) -> list[Evidence]:
        return [Evidence(f"{r.get('url')} answered HTTP {r.get('http_status')} {words}"
                         + (f" ({r.get('proxy_error')})" if r.get("proxy_error") else ""),
                         url=r.get("url"), proxy=host.proxy)
                for r in host.crl if _failed(r) and r.get("http_status") in statuses and host.proxy is not None]
    return rule


def _identity_path(host: HostView) -> list[Evidence]:
    failing = {name for name, entry in (host.record.get("identities") or {}).items() if entry.get("chain_ok") is False}
    return [Evidence(f["detail"]) for f in host.findings("identity_path_differs")
            if f.get("identity") in failing or not failing and host.failing]


def _crl_expired(host: HostView) -> list[Evidence]:
    return [Evidence(f"{r.get('url')} is stale: NextUpdate {r.get('next_update')}", url=r.get("url"))
            for r in host.crl if _failed(r) and r.get("stale")]


def _endpoint_missing(host: HostView) -> list[Evidence]:
    return [Evidence(f"{r.get('url')} answered HTTP 404", url=r.get("url"))
            for r in host.crl if _failed(r) and r.get("http_status") == 404 and r.get("kind") in ("crl", "ca_issuers")]


def _delta_blocked(host: HostView) -> list[Evidence]:
    bases = [r for r in host.crl if r.get("kind") == "crl" and r.get("http_status") == 200]
    return [Evidence(f"the delta CRL {r.get('url')} answered HTTP {r.get('http_status')} while the base CRL "
                     f"{bases[0].get('url')} answered 200" + (" (a '+' in its name: IIS refuses double escaping)"
                                                              if "+" in str(r.get("url")) else ""),
                     url=r.get("url"))
            for r in host.crl if _failed(r) and r.get("kind") == "delta_crl" and r.get("http_status") in (404, 403)
            and bases]


def _crl_rejected(host: HostView) -> list[Evidence]:
    return [Evidence(f"{r.get('url')}: {r.get('rejected')}", url=r.get("url")) for r in host.crl if r.get("rejected")]


def _ocsp_failing(host: HostView) -> list[Evidence]:
    return [Evidence(f"{r.get('url')} answered an OCSP request with {r.get('ocsp_status')}", url=r.get("url"))
            for r in host.crl if r.get("kind") == "ocsp" and r.get("ocsp_status") not in (None, "successful")]


def _ldap_only(host: HostView) -> list[Evidence]:
    flagged = (host.record.get("flags") or {}).get("ldap_only") or []
    return [Evidence(f"certificate {thumbprint} names only ldap:// CRL distribution points") for thumbprint in flagged]


def _https_cdp(host: HostView) -> list[Evidence]:
    return [Evidence(f"{e.get('url')} is published over https", url=e.get("url"))
            for e in host.record.get("endpoints") or []
            if isinstance(e, dict) and str(e.get("url", "")).lower().startswith("https:")
            and e.get("kind") in ("crl", "delta_crl", "ca_issuers")]


def _finding_rule(code: str) -> Rule:
    return lambda host: [Evidence(f["detail"]) for f in host.findings(code)]


def _non_self_signed_root(host: HostView) -> list[Evidence]:
    return [Evidence(f"the Root store holds {c.get('subject')} issued by {c.get('issuer')} ({c.get('thumbprint')})")
            for c in (host.record.get("trust_store") or {}).get("non_self_signed") or []]


def _issuer_list_too_large(host: HostView) -> list[Evidence]:
    store = host.record.get("trust_store") or {}
    size = store.get("issuer_list_bytes")
    if isinstance(size, int) and size > MAX_ISSUER_LIST_BYTES:
        return [Evidence(f"the Root store's {store.get('count')} subject names make a trusted issuer list of "
                         f"{size} bytes, over {MAX_ISSUER_LIST_BYTES}")]
    return []


def _root_autoupdate_blocked(host: HostView) -> list[Evidence]:
    policy = host.evidence.get("root_autoupdate") or {}
    untrusted = [r for r in host.tls if "UntrustedRoot" in (r.get("chain_status") or [])]
    if policy.get("DisableRootAutoUpdate") == 1 and untrusted:
        return [Evidence(f"DisableRootAutoUpdate is 1 and {untrusted[0].get('peer')}'s chain ends in an untrusted "
                         "root")]
    ctl = [r for r in host.crl if r.get("kind") == "ctl" and not r.get("reachable")]
    return [Evidence(f"the root certificate list {r.get('url')}: {_error(r)}", url=r.get("url")) for r in ctl]


CATALOGUE: tuple[Cause, ...] = (
    Cause("clock_skew", "the host's clock is wrong", "server", "resynchronise the host's clock (w32tm /resync) and "
          "fix its time source", False, "the host's UTC time against the controller's, over 5 minutes apart",
          "TechNet blog 'instan' 2009; Microsoft Learn, Kerberos clock skew policy", _clock_skew),
    Cause("gpo_overwrites_proxy", "a Group Policy rewrites the WinHTTP proxy", "server", "change the GPO's registry "
          "item (filter crlfix.windows.winhttp_settings_value gives its value) or remove it; a fix made by netsh is "
          "reverted at the next refresh", False, "a Group Policy Preferences registry item in the host's Group "
          "Policy history that writes WinHttpSettings other than the desired proxy",
          "Microsoft Learn, Group Policy Preferences Registry extension", _gpo_overwrites_proxy),
    Cause("no_proxy", "no machine-wide WinHTTP proxy", "server", "set fix_crl_proxy for the host's site: this role "
          "runs netsh winhttp set proxy in both views", True, "both registry views direct and the fetch through the "
          "host's path times out", "Microsoft Learn, 'CryptoAPI proxy'; Exchange team blog, failed revocation "
          "checks", _no_proxy),
    Cause("views_disagree", "the 32-bit and 64-bit WinHTTP proxies differ", "server", "this role sets both views "
          "(fix_crl_views)", True, "the native and WOW6432Node values differ", "jpsanders MSDN blog 2009 (x64)",
          _views_disagree),
    Cause("proxy_unreachable", "the proxy cannot be reached", "network", "make the proxy reachable from the host, or "
          "set fix_crl_proxy to one that is", False, "every URL fails without an HTTP answer through the netsh proxy",
          "KB 294305", _proxy_unreachable),
    Cause("proxy_requires_auth", "the proxy asks for authentication", "network", "allow the CRL, AIA and OCSP URLs "
          "anonymously: services fetch as the machine and cannot answer 407", False, "HTTP 407 from the proxy",
          "jpsanders MSDN blog 2009", _status_rule((407,), "(the proxy asks for authentication)")),
    Cause("proxy_denies_agent", "the proxy refuses CryptoAPI", "network", "allow User-Agent Microsoft-CryptoAPI/* to "
          "the CRL, AIA and OCSP hosts", False, "HTTP 403 to CryptoAPI's own User-Agent", "jpsanders MSDN blog 2009",
          _status_rule((403,), "to CryptoAPI's own User-Agent")),
    Cause("proxy_cannot_reach_endpoint", "the proxy cannot reach the CRL server", "network", "fix the proxy's DNS or "
          "route to the CRL host", False, "502/503/504 from the proxy (squid: X-Squid-Error)", "squid documentation, "
          "ERR_DNS_FAIL/ERR_CONNECT_FAIL", _status_rule(GATEWAY, "from the proxy")),
    Cause("identity_path", "a service identity takes another path", "server", "set the machine proxy (this role) or "
          "fix that account's IE/WPAD settings", True, "CryptoAPI as a service identity goes another way than netsh",
          "KB 2623724", _identity_path),
    Cause("crl_expired_at_source", "a CRL expired at its publisher", "pki", "republish the CRL (and fix its "
          "publishing); a revocation grace period by GPO is a stop-gap", False, "the fetched CRL's NextUpdate is in "
          "the past", "coretekservices 2014; Microsoft Learn, Network Retrieval policy", _crl_expired),
    Cause("endpoint_missing_at_source", "a CRL or CA certificate is missing at its publisher", "pki", "republish it "
          "at the URL the certificates name (or fix the CDP)", False, "HTTP 404 through the proxy",
          "TechNet PKI blog 2011 (PKIView)", _endpoint_missing),
    Cause("delta_crl_blocked", "the web server refuses the delta CRL", "pki", "allowDoubleEscaping on the CDP's IIS "
          "site (the '+' in a delta CRL's name)", False, "the delta CRL 404s while its base CRL answers",
          "TechNet dd379478", _delta_blocked),
    Cause("crl_rejected", "a fetched CRL is not valid for its certificates", "pki", "fix the CA's CRL (its issuer "
          "and signature)", False, "the CRL's issuer or signature does not match the certificate's issuer",
          "gradenegger.eu", _crl_rejected),
    Cause("ocsp_responder_failing", "the OCSP responder fails", "pki", "repair the online responder (its signing "
          "certificate, its revocation configuration)", False, "the responder answers an OCSP request with "
          "malformedRequest, internalError, tryLater, sigRequired or unauthorized", "TechNet cc770413",
          _ocsp_failing),
    Cause("ldap_only_cdp", "a certificate names only LDAP CRL locations", "pki", "add an HTTP CDP and reissue the "
          "certificate", False, "only ldap:// CRL distribution points in the chain", "KB 884115", _ldap_only),
    Cause("https_cdp", "a CRL or CA certificate is published over HTTPS", "pki", "publish CDP and AIA over http",
          False, "an https:// CDP or AIA URL in the chain", "SupportArticles-docs PR 1246", _https_cdp),
    Cause("stale_service", "a running service holds state from before the fix", "server", "restart the service "
          "(fix_crl_restart_services: true)", True, "the service's process started before the proxy changed and "
          "its handshake is slow (finding service_stale)", "Microsoft Learn ee619723", _finding_rule("service_stale")),
    Cause("slow_chain_timeouts", "the chain engine's retrieval timeouts are raised", "server", "reset "
          "ChainUrlRetrievalTimeoutMilliseconds and ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds",
          False, "a retrieval timeout above its default (finding slow_chain_timeouts)", "KB 884115",
          _finding_rule("slow_chain_timeouts")),
    Cause("non_self_signed_root", "the Root store holds a certificate that is not a root", "server", "move it to "
          "the Intermediate Certification Authorities store", False, "a Root store entry whose issuer is not its "
          "subject", "uclobby 2015, Lync certificate store checks", _non_self_signed_root),
    Cause("trusted_issuer_list_too_large", "the Root store is too large for Schannel", "server", "remove roots that "
          "are not needed, or set SendTrustedIssuerList to 0", False, "the Root store's subject names over 16 KB",
          "KB 933430; KB 2464556", _issuer_list_too_large),
    Cause("root_autoupdate_blocked", "Windows cannot update its trusted roots", "server", "allow the root "
          "certificate list's host (ctldl.windowsupdate.com) through the proxy, or deploy roots by GPO", False,
          "DisableRootAutoUpdate with an untrusted root, or the root certificate list unreachable",
          "Microsoft Learn, 'Configure trusted roots and disallowed certificates'", _root_autoupdate_blocked),
    Cause("protocol_mismatch", "a peer shares no TLS protocol with the host", "server", "enable a common TLS "
          "version on one side", False, "no TLS protocol in common (finding protocol_mismatch)", "Microsoft Learn, "
          "Schannel error codes", _finding_rule("protocol_mismatch")),
)
UNDETERMINED = Cause("undetermined", "the cause is not determined", "server", "read what was seen; run the audit "
                     "with the CAPI2 log enabled (fix_crl_enable_capi2_log)", False, "the evidence fits no cause",
                     "", lambda host: [])
BY_CODE = {cause.code: cause for cause in (*CATALOGUE, UNDETERMINED)}


def _seen(host: HostView) -> str:
    """What was seen on a host whose evidence fits no cause: the phase's summary and its findings."""
    codes = sorted({f.get("code") for f in host.record.get("findings") or []})
    return f"{host.check.get('summary') or 'not measured'}" + (f"; findings {', '.join(codes)}" if codes else "")


def diagnose(record: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """The record's ``diagnosis``: each cause that holds, primary first (catalogue order), with what was seen.

    An empty list for a compliant host, for one the run could not measure (unreachable, an error before any
    measurement: its reason says why) and for one that needs a change although its proof passes and no cause holds
    (the inventory asks for another value, e.g. another bypass list: nothing fails, so there is nothing to explain);
    ``undetermined`` when the checks fail and no rule holds.
    """
    host = HostView(record)
    if not host.failing or not host.check:
        return []
    out = []
    for cause in CATALOGUE:
        seen = cause.rule(host)
        if seen:
            out.append(entry(cause, seen))
    if not out and record.get("status") == "would_change" and host.check.get("passed"):
        return []
    return out or [entry(UNDETERMINED, [Evidence(_seen(host))])]


def risks(record: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """The record's ``risks``: the causes that hold on a host whose proof passes (compliant, or changed and proved).

    They fail nothing the audit measured (a failing OCSP responder: Windows falls back to the CRL; raised chain
    timeouts only lengthen a failure), so the host is not failed; each is named with what was seen."""
    host = HostView(record)
    if record.get("status") not in ("compliant", "changed") or not host.check:
        return []
    return [entry(cause, seen) for cause in CATALOGUE if (seen := cause.rule(host))]


def entry(cause: Cause, seen: t.Sequence[Evidence]) -> dict[str, t.Any]:
    return {"cause": cause.code, "title": cause.title, "owner": cause.owner, "fix": cause.fix,
            "fixable_here": cause.fixable_here, "evidence": [e.text for e in seen],
            "urls": sorted({e.url for e in seen if e.url}), "proxies": sorted({e.proxy for e in seen if e.proxy})}


__all__ = ["BY_CODE", "CATALOGUE", "MAX_CLOCK_SKEW_S", "OWNERS", "UNDETERMINED", "Cause", "Evidence", "HostView",
           "diagnose", "entry", "risks"]
