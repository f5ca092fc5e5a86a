# PRIVATE to the crlfix.windows collection; may change without notice.
"""The fix_crl host run's options and its plan: what the inventory asks for, which views differ, what to measure.

Pure controller work on what the first ``host_audit`` command read. The options arrive validated (the action's
argument spec) and are made typed here once; the plan is made once (:func:`make_plan`) and the apply carries out its
:class:`~_winhttp_proxy.Change` as it is, so a view this plan calls equal is one the apply leaves alone.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ansible.errors import AnsibleError, AnsibleValueOmittedError

from ansible_collections.crlfix.windows.plugins.module_utils._proxy_values import proxy_from_dict
from ansible_collections.crlfix.windows.plugins.plugin_utils import _crl_retrieval, _tls_probe
from ansible_collections.crlfix.windows.plugins.plugin_utils._action import module_argument_spec
from ansible_collections.crlfix.windows.plugins.plugin_utils._cert_revocation import CertRevocationOptions
from ansible_collections.crlfix.windows.plugins.plugin_utils._endpoints import Endpoint, normalize_endpoints
from ansible_collections.crlfix.windows.plugins.plugin_utils._tls_probe import Peer
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_proxy import (
    Change,
    desired_from_args,
    plan_change,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_state import HostState

MODULE = "fix_crl_host"
# Where null means something of its own rather than "the default": wait for the full timeouts.
NULL_IS_A_VALUE = frozenset({"audit_time_box_ms"})


@dataclasses.dataclass(frozen=True)
class FixCrlOptions:
    """The options of ``crlfix.windows.fix_crl_host`` (the role's variables without ``fix_crl_``), typed.

    Defaults live in the module's documentation only; :meth:`from_args` fills them in. ``extra_endpoints`` are
    :class:`Endpoint` values, checked once here.
    """

    state: str
    proxy: str | t.Mapping[str, t.Any] | None  # a dict of schemes as winhttp_proxy takes it (win_http_proxy's form)
    bypass: tuple[str, ...]
    views: tuple[str, ...]
    cert_stores: tuple[str, ...]
    chain_stores: tuple[str, ...]
    cert_thumbprints: tuple[str, ...]
    cert_subject: str | None
    cert_ekus: tuple[str, ...]
    expiry_warning_days: int
    extra_endpoints: tuple[Endpoint, ...]
    endpoint_requirement: str
    crl_timeout_ms: int
    flush: bool
    measure_before: bool
    measure_after_rollback: bool
    audit_time_box_ms: int | None
    peers: tuple[t.Any, ...] | None
    peer_group: str | None
    peer_groups: tuple[str, ...]
    max_peers: int
    peer_address_from: str
    tls_port: int
    probe_samples: int
    probe_timeout_ms: int
    max_handshake_ms: int
    check_revocation: bool
    mutual_tls: bool
    restart_services: bool
    rollback: bool
    fail_host: bool
    services: tuple[str, ...]
    evidence_hours: int
    enable_capi2_log: bool
    result_detail: str
    verify_identities: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: t.Mapping[str, t.Any]) -> FixCrlOptions:
        """The options from arguments the action's argument spec validated; an option left out or null takes its
        documented default. Lists become tuples, so the options are hashable and cannot be mutated.

        Raises:
            ValueError: an extra endpoint is not a URL this collection fetches (the message names it).
        """
        spec = module_argument_spec(MODULE)
        values: dict[str, t.Any] = {}
        for field in dataclasses.fields(cls):
            value = args.get(field.name)
            if field.name not in args or value is None and field.name not in NULL_IS_A_VALUE:
                value = spec[field.name].get("default")
            values[field.name] = tuple(value) if isinstance(value, list) else value
        extra = list(values["extra_endpoints"] or ())
        values["extra_endpoints"] = tuple(normalize_endpoints(extra, field="extra_endpoints")) if extra else ()
        return cls(**values)

    @property
    def direct(self) -> bool:
        return self.state == "absent" or self.proxy == ""


# Why the action reads the role's variables itself: Ansible templates every argument of a task for every host before
# the action starts, and ~30 arguments of the form "{{ fix_crl_<option> }}" cost about 29 ms of controller CPU per
# host, a third of Ansible's whole work around a raw task (docs/performance.md). Templating only the values skips the
# templates that merely name a variable; the values are then validated against the argument spec as arguments are.
def options_from_variables(prefix: str, names: t.Iterable[str], variables: t.Mapping[str, t.Any],
                           template: t.Callable[[t.Any], t.Any]) -> tuple[dict[str, t.Any], list[str]]:
    """``{option: templated value of <prefix><option>}`` for every defined variable, and the errors.

    An undefined variable leaves its option out (the module's default applies), as does one that templates to
    ``omit``. A value that does not template is an error naming the variable and Ansible's message; the other
    options are still read, so that the host's failed record honours ``fail_host`` and ``result_detail``.
    """
    options: dict[str, t.Any] = {}
    errors: list[str] = []
    for name in names:
        variable = prefix + name
        if variable not in variables:
            continue
        try:
            options[name] = template(variables[variable])
        except AnsibleValueOmittedError:
            continue
        except AnsibleError as exc:
            errors.append(f"{variable}: {exc.message}")
    return options, errors


# ---- the host_audit command the plan asks for (docs/dev/host-scripts.md, host_audit); _audit reads its answer ----

MAX_BYTES_LIMIT = 64 * 1024 * 1024
# A CRL body longer than this is cut on the host and not parsed: crl_retrieval_check's documented max_bytes default
# (a unit test keeps the two equal).
CRL_MAX_BYTES = 4194304
MAX_TIME_BOX_MS = 600000


@dataclasses.dataclass(frozen=True)
class HostAuditRequest:
    """One host_audit command. ``cert_options`` None: no certificates are read and ``endpoints`` are exactly the URLs
    to check (else they are checked besides the certificates' own); no ``peers``: no TLS probes; ``time_box_ms`` None:
    every measurement runs to its own timeout."""

    cert_options: CertRevocationOptions | None
    endpoints: tuple[Endpoint, ...]
    crl_timeout_ms: int
    purge_cache: bool
    max_bytes: int
    peers: tuple[Peer, ...]
    samples: int
    probe_timeout_ms: int
    max_handshake_ms: int
    check_revocation: bool
    stop_after_unknown: bool = True
    time_box_ms: int | None = None
    evidence: dict[str, t.Any] | None = None  # host_audit's ``evidence`` argument (_evidence.host_args), or none
    mutual: bool = False  # present the host's own certificate to each peer (docs/fix-crl.md, "Mutual TLS")
    service_peer: Peer | None = None  # the host's own service, probed after the peers
    client_certificate: dict[str, str] | None = None  # which certificate a mutual probe presents (the service's)
    identities: dict[str, t.Any] | None = None  # _identities.host_args; None: not read


def _check_int(name: str, value: t.Any, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ValueError(f"{name}: must be an integer from 1 to {high}, got {value!r}")


def validate_request(request: HostAuditRequest) -> None:
    """Refuse a request before anything runs on the host; the message names the field and the value."""
    _check_int("crl_timeout_ms", request.crl_timeout_ms, _crl_retrieval.MAX_TIMEOUT_MS)
    _check_int("max_bytes", request.max_bytes, MAX_BYTES_LIMIT)
    _check_int("samples", request.samples, _tls_probe.MAX_SAMPLES)
    _check_int("probe_timeout_ms", request.probe_timeout_ms, _tls_probe.MAX_TIMEOUT_MS)
    _check_int("max_handshake_ms", request.max_handshake_ms, _tls_probe.MAX_TIMEOUT_MS)
    box = request.time_box_ms
    if box is not None and (isinstance(box, bool) or not isinstance(box, int) or not 1 <= box <= MAX_TIME_BOX_MS):
        raise ValueError(f"time_box_ms: must be an integer from 1 to {MAX_TIME_BOX_MS} or null, got {box!r}")
    for index, endpoint in enumerate(request.endpoints):  # the last check before a URL reaches the host
        if not isinstance(endpoint, Endpoint):
            raise ValueError(f"endpoints[{index}]: expected an Endpoint, got {endpoint!r}")
        _crl_retrieval.validate_url(endpoint.url, field=f"endpoints[{index}]")
    for index, peer in enumerate(request.peers):
        if not isinstance(peer, Peer):
            raise ValueError(f"peers[{index}]: expected a Peer, got {peer!r}")


def host_args(request: HostAuditRequest, *, check_mode: bool) -> dict[str, t.Any]:
    """The ``host_audit`` arguments (docs/dev/host-scripts.md); the purge, a write, is not sent in check mode."""
    purge_now = request.purge_cache and not check_mode
    urls = [e.url for e in request.endpoints if e.scheme != "ldap"]
    # foreign_agent: one HEAD more per answered URL, with another agent (host-scripts.md, "The foreign agent").
    crl: dict[str, t.Any] | None = {"timeout_ms": request.crl_timeout_ms, "purge_cache": purge_now,
                                    "max_bytes": request.max_bytes, "foreign_agent": True}
    options = request.cert_options
    if options is not None:
        # Each OCSP responder is asked about a certificate that names it (RFC 6960 A.1), so its answer tells whether
        # it works (host-scripts.md, "OCSP requests"); a bare GET only shows the path.
        crl.update(urls=[], extra_urls=urls, ocsp_requests=True)
    elif urls or purge_now:
        crl.update(urls=urls, extra_urls=[])
    else:
        crl = None
    tls = None
    if request.peers or request.service_peer:
        tls = {**_tls_probe.host_args(_probed(request), samples=request.samples, timeout_ms=request.probe_timeout_ms,
                                      check_revocation=request.check_revocation, mutual=request.mutual,
                                      client_certificate=request.client_certificate),
               "stop_after_unknown": bool(request.stop_after_unknown)}
        if request.service_peer is not None:  # probed last, to its own timeout: a time-boxed sample proves nothing
            tls["own_service_last"] = True
    args = {
        "stores": list(options.stores) if options is not None else None,
        "chain_stores": list(options.chain_stores) if options is not None else [],
        "winhttp": True,
        "crl": crl,
        "tls": tls,
        "time_box_ms": request.time_box_ms,
    }
    if request.evidence is not None:  # schema 1 without it reads no evidence (recorded hosts send none)
        args["evidence"] = request.evidence
    if request.identities is not None:  # left out when not read, as host_audit schema 1 had it
        args["identities"] = request.identities
    return args


def _probed(request: HostAuditRequest) -> tuple[Peer, ...]:
    return request.peers + ((request.service_peer,) if request.service_peer else ())


@dataclasses.dataclass(frozen=True)
class Inventory:
    """What the plan needs from the inventory: this host, its groups, the peer groups' members, ansible_host.

    ``hostvars`` is Ansible's lazy ``HostVars``: reading one host's variables templates all of them, so only
    the few peers a host probes are ever looked up (reading every member's would cost O(fleet) per host).
    """

    hostname: str
    group_names: tuple[str, ...]
    groups: t.Mapping[str, t.Sequence[str]]
    hostvars: t.Mapping[str, t.Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_task_vars(cls, task_vars: t.Mapping[str, t.Any], wanted_groups: t.Iterable[str]) -> Inventory:
        wanted = set(wanted_groups)
        groups = {name: list(members) for name, members in (task_vars.get("groups") or {}).items()
                  if name in wanted}
        return cls(hostname=str(task_vars.get("inventory_hostname", "")),
                   group_names=tuple(task_vars.get("group_names") or ()), groups=groups,
                   hostvars=task_vars.get("hostvars") or {})

    def ansible_host(self, name: str) -> str:
        """The peer's ``ansible_host``, or its inventory name when it has none."""
        try:
            return str(self.hostvars[name].get("ansible_host", name))
        except (KeyError, TypeError, AttributeError):
            return name


def peer_group_of(options: FixCrlOptions, inventory: Inventory) -> str | None:
    """The group whose members are this host's peers: the given one, or the first of peer_groups it is in."""
    if options.peer_group:
        return options.peer_group
    return next((name for name in options.peer_groups if name in inventory.group_names), None)


def derive_peers(options: FixCrlOptions, inventory: Inventory) -> tuple[str | None, list[dict[str, t.Any]]]:
    """(peer group, peers): the next members of the sorted group after this host, wrapping round, at most max_peers.

    A ring rather than "the first three" spreads the probes: every member is probed by up to max_peers others.
    Explicit ``peers`` win (the empty list means no TLS probes).
    """
    if options.peers is not None:
        return None, list(options.peers)
    group = peer_group_of(options, inventory)
    members = sorted(inventory.groups.get(group, ())) if group else []
    position = members.index(inventory.hostname) if inventory.hostname in members else -1
    ring = members[position + 1:] + members[:max(position, 0)]
    if options.max_peers > 0:
        ring = ring[:options.max_peers]
    peers = []
    for peer in ring:
        address = inventory.ansible_host(peer) if options.peer_address_from == "ansible_host" else peer
        peers.append({"host": address, "port": options.tls_port, "sni": peer})
    return group, peers


def service_peer(options: FixCrlOptions, inventory: Inventory) -> dict[str, t.Any] | None:
    """The host's own service as a probe target, or None when there is nothing to learn from one.

    Without mutual TLS the service checks nothing of ours, so the handshake says nothing about its state; without
    named services there is nothing to restart and no service known to listen on ``tls_port``.
    """
    if not options.mutual_tls or not options.services:
        return None
    name = inventory.hostname
    address = inventory.ansible_host(name) if options.peer_address_from == "ansible_host" else name
    return {"host": address, "port": options.tls_port, "sni": name}


def describe_before(state: HostState) -> dict[str, t.Any]:
    """The record's ``before``: both views decoded (a missing value means direct access)."""
    return {
        "computer_name": state.computer_name,
        "os": {"build": state.os_build, "caption": state.os_caption, "is_64bit": state.is_64bit},
        "views": {name: value.summary() for name, value in state.views.items() if value is not None},
        "advproxy": state.advproxy,
        "views_disagree": state.views_disagree,
    }


def desired_args(options: FixCrlOptions) -> dict[str, t.Any]:
    """The ``winhttp_proxy`` arguments for the desired state (direct access when the proxy is empty)."""
    if options.direct:
        return {"state": "absent", "proxy": None, "bypass": None}
    proxy = options.proxy
    text = proxy_from_dict(proxy) if isinstance(proxy, t.Mapping) else (proxy or "").strip()
    return {"state": "present", "proxy": text,
            "bypass": [item.strip() for item in options.bypass if item.strip()]}


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the run will do and measure on one host: the desired value, the change of the views that differ (made once,
    applied as it is), the endpoints to fetch (the certificates' HTTP(S) ones, as the audit read them once, then the
    extra ones) and the peers to probe."""

    desired: dict[str, t.Any]
    change: Change
    endpoints: tuple[Endpoint, ...]
    ldap_endpoints: tuple[str, ...]
    peer_group: str | None
    peers: tuple[Peer, ...]

    @property
    def changes(self) -> bool:
        return bool(self.change.operations)

    @property
    def views(self) -> list[str]:
        """The views the change writes."""
        return [op["view"] for op in self.change.operations]


def make_plan(options: FixCrlOptions, state: HostState, endpoints: t.Sequence[Endpoint],
              ldap_endpoints: t.Sequence[str], peer_group: str | None, peers: t.Sequence[Peer]) -> Plan:
    """The plan from what the first audit read: ``endpoints`` are the certificates' valid HTTP(S) endpoints,
    ``peers`` the probe targets, normalised once by the caller."""
    want = desired_args(options)
    change = plan_change(state, options.views, desired=desired_from_args(want))
    return Plan(
        desired={"state": want["state"], "proxy": want["proxy"] or "", "bypass": want["bypass"] or [],
                 "views": list(change.views)},
        change=change,
        endpoints=tuple(endpoints) + options.extra_endpoints,
        ldap_endpoints=tuple(ldap_endpoints),
        peer_group=peer_group,
        peers=tuple(peers),
    )


__all__ = ["CRL_MAX_BYTES", "MAX_BYTES_LIMIT", "MAX_TIME_BOX_MS", "MODULE", "FixCrlOptions", "HostAuditRequest",
           "Inventory", "Plan", "derive_peers", "describe_before", "desired_args", "host_args", "make_plan",
           "options_from_variables", "peer_group_of", "service_peer", "validate_request"]
