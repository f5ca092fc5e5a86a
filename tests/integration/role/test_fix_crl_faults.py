"""fix_crl when something breaks at an exact point of the run: the faults it must survive.

The faults are the twin's test-only hooks (tests/lab/README.md, "Fault hooks"; not Windows behaviour): a twin
armed with ``lab.set_fault(name, "winhttp_apply", action)`` runs the apply to its end (the registry write is on
disk, as on Windows once netsh has completed) and then either dies before the Receive that would return the
output (``stop``) or first stops the lab's squid (``stop_squid``), so verification runs without a proxy.

The registry bytes are decoded here with ``struct`` (layout: plugins/module_utils/_winhttp_settings.py), not
with the twin's or the collection's decoder, so that a wrong value cannot pass for a right one.
"""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.lab.fleet import LabError

from ._runs import NO_VERIFICATION, reset_fleet, run_fix_crl, site_proxies

if TYPE_CHECKING:
    from tests.lab.fleet.handle import LabHandle

pytestmark = pytest.mark.lab

# The layout of plugins/module_utils/_winhttp_settings.py: DWORD version 0x18, DWORD counter, DWORD flags (1 direct,
# 3 manual proxy), then DWORD length + ASCII proxy and DWORD length + ASCII bypass, all little-endian.
FLAGS_PROXY = 0x3
ONE_BATCH = {"fix_crl_serial": "100%", "fix_crl_max_fail_percentage": 100}
FAST = {**ONE_BATCH, "fix_crl_crl_timeout_ms": 3000, "fix_crl_probe_timeout_ms": 8000, "fix_crl_probe_samples": 1,
        "fix_crl_max_handshake_ms": 1000}


def raw_views(lab: LabHandle, name: str) -> dict[str, bytes | None]:
    """Each registry view's WinHttpSettings bytes as the twin's state file holds them (None: no value)."""
    registry = lab.state(name)["registry"]
    return {view: None if registry[view]["WinHttpSettings"] is None
            else base64.b64decode(registry[view]["WinHttpSettings"]) for view in ("native", "wow6432")}


def proxy_of(value: bytes) -> tuple[int, str, str]:
    """(flags, proxy, bypass) of a WinHttpSettings value; fails the test on bytes that do not parse exactly."""
    (version,) = struct.unpack_from("<I", value, 0)
    flags, proxy_len = struct.unpack_from("<II", value, 8)  # bytes 4-8 are the change counter
    assert version == 0x18, value.hex()
    proxy = value[16:16 + proxy_len]
    (bypass_len,) = struct.unpack_from("<I", value, 16 + proxy_len)
    bypass = value[20 + proxy_len:20 + proxy_len + bypass_len]
    assert len(value) == 20 + proxy_len + bypass_len, f"trailing or missing bytes: {value.hex()}"
    return flags, proxy.decode("ascii"), bypass.decode("ascii")


def host_with(lab: LabHandle, scenario: str) -> str:
    return next(name for name, host in sorted(lab.hosts.items()) if host.scenario == scenario)


def is_listening(lab: LabHandle, name: str) -> bool:
    return bool(lab.metrics()["hosts"][name]["listening"])


@pytest.fixture
def faults(lab: LabHandle) -> Iterator[LabHandle]:
    """The shared lab, with every twin up in its seeded state, no armed fault and squid running afterwards."""
    reset_fleet(lab)
    lab.clear_faults()
    try:
        yield lab
    finally:
        lab.clear_faults()
        squid = lab.squid()
        # A squid stopped by the lab server is still our (the test process's) child: stop() reaps it.
        squid.stop()
        squid.start()
        reset_fleet(lab)


def test_a_host_that_dies_in_the_middle_of_the_apply_is_reported_and_the_others_complete(faults, tmp_path) -> None:
    # "direct" needs a change; "wrong_proxy" needs one too; "correct" needs none.
    faulted, other, compliant = (host_with(faults, s) for s in ("direct", "wrong_proxy", "correct"))
    proxies = site_proxies(faults)
    original = {name: raw_views(faults, name) for name in (faulted, other, compliant)}
    faults.set_fault(faulted, "winhttp_apply", "stop")

    run = run_fix_crl(faults, tmp_path, "-l", f"{faulted},{other},{compliant}",
                      extra_vars={**NO_VERIFICATION, **ONE_BATCH})

    # The fault fired (it is one-shot) and the host is down: the apply's output never reached the controller.
    assert faults.clear_faults() == []
    assert not is_listening(faults, faulted)
    assert run.rc != 0, run.stdout
    statuses = run.status()
    assert statuses[other] == "changed", (statuses, run.host(other)["reason"])
    assert statuses[compliant] == "compliant", (statuses, run.host(compliant)["reason"])
    for name in (other, compliant):
        want = proxies[faults.hosts[name].site]
        assert {proxy_of(v) for v in raw_views(faults, name).values()} == {(FLAGS_PROXY, want, "")}, name

    host = run.host(faulted)
    assert host["status"] in ("unreachable", "failed"), host
    assert host["reason"] and "apply" in host["reason"], host["reason"]
    assert run.recap[faulted]["unreachable"] + run.recap[faulted]["failed"] >= 1, run.recap
    # Each view holds its previous bytes or exactly what the inventory asked for: never anything else.
    want = proxies[faults.hosts[faulted].site]
    after = raw_views(faults, faulted)
    for view, value in after.items():
        assert value == original[faulted][view] or (value is not None and proxy_of(value) == (FLAGS_PROXY, want, "")), (
            view, None if value is None else value.hex())
    assert after != original[faulted], "the apply's write should be on disk before the host died"
    assert any("the connection was lost while applying" in error["msg"] for error in host["errors"]), host["errors"]


def test_the_report_never_claims_values_a_host_that_died_mid_apply_may_not_hold(faults, tmp_path) -> None:
    name = host_with(faults, "direct")
    faults.set_fault(name, "winhttp_apply", "stop")

    run = run_fix_crl(faults, tmp_path, "-l", name, extra_vars={**NO_VERIFICATION, **ONE_BATCH})

    assert faults.clear_faults() == [] and not is_listening(faults, name)
    host = run.host(name)
    assert host["status"] in ("unreachable", "failed"), host
    # The controller cannot know what the host holds: `after` must be unknown (None) or what is really there.
    if host["after"] is not None:
        reported = {view: base64.b64decode(v["raw_b64"]) if v["present"] else None
                    for view, v in host["after"]["views"].items()}
        assert reported == raw_views(faults, name), (host["after"], raw_views(faults, name))


def test_squid_stopped_between_apply_and_verification_rolls_the_host_back_byte_for_byte(faults, tmp_path) -> None:
    name = host_with(faults, "direct")
    original = raw_views(faults, name)
    commands_before = faults.state(name)["counters"]["commands"]
    faults.set_fault(name, "winhttp_apply", "stop_squid")

    run = run_fix_crl(faults, tmp_path, "-l", name, extra_vars=FAST)

    assert faults.clear_faults() == []  # the fault fired after the apply
    # The hook waits only until squid's port is closed; the process may take a moment longer to exit.
    deadline = time.monotonic() + 15
    while faults.squid().pid() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert faults.squid().pid() is None, "the hook should have stopped squid before verification"
    assert run.rc == 2, run.stdout + run.stderr
    host = run.host(name)
    assert host["status"] == "rolled_back", (host["status"], host["reason"])
    # The change was made (the apply's answer says so), then undone to the exact previous bytes.
    assert host["planned"]["change"] is True
    assert raw_views(faults, name) == original
    assert host["rollback"]["performed"] is True and host["rollback"]["ok"] is True
    assert host["verification"]["after"]["passed"] is False
    want = site_proxies(faults)[faults.hosts[name].site]
    # The cause in words leads the reason: squid is down, so nothing answered through the new proxy.
    assert [d["cause"] for d in host["diagnosis"]][:1] == ["proxy_unreachable"], host["diagnosis"]
    assert host["reason"].startswith(f"the proxy cannot be reached: verification failed after setting proxy {want}")
    assert "rolled back to the previous values because" in host["reason"], host["reason"]
    assert f"{name}: rolled_back: the proxy cannot be reached: verification failed" in run.stdout
    # The budget for a host that needs a change (docs/performance.md): at most 4 remote commands, the rollback included.
    assert host["commands"] == 4 and "after_rollback" not in host["verification"]
    assert faults.state(name)["counters"]["commands"] - commands_before == 4, faults.state(name)["counters"]


@pytest.mark.parametrize(("after_script", "action", "field"), [
    ("winhttp_apply", "explode", "action: expected one of"),
    ("", "stop", "after_script: expected a host script name"),
])
def test_a_bad_fault_is_refused_naming_the_field_and_the_value(faults, after_script, action, field) -> None:
    name = host_with(faults, "direct")
    with pytest.raises(LabError, match=field):
        faults.set_fault(name, after_script, action)
    assert faults.clear_faults() == []  # nothing was armed
