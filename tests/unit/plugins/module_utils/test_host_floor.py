"""module_utils/_host_floor.py and host_audit's floor check (docs/dev/host-scripts.md, "The floor").

The floor documents are the shape ``_ps1/_host_floor.ps1`` prints; the facts are the ones Windows ships (the twin's
host classes, tests/twin/README.md "Host classes": a 2008 R2 has Windows PowerShell 2.0 and no .NET 4.x, a 2012 R2
PowerShell 4.0 and .NET 4.5.1).
"""

from __future__ import annotations

import json
import re
import typing as t

import pytest

from ansible_collections.crlfix.windows.plugins.module_utils import _host_floor
from ansible_collections.crlfix.windows.plugins.module_utils._host_floor import (
    HostBelowFloor,
    below_floor_reason,
    check_floor,
    parse_floor,
)
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl import _run
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._plan import FixCrlOptions, Inventory
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import PS1_DIR, build_host_script
from tests import pslint
from tests.twin.host_classes import class_for_build, floor_report

FLOOR_PS1 = PS1_DIR / "_host_floor.ps1"
WIN2008R2 = {"powershell": "2.0", "dotnet_release": None, "language_mode": "FullLanguage", "os_build": 7601,
             "missing": ["powershell", "dotnet"]}
WIN2019 = {"powershell": "5.1", "dotnet_release": 461814, "language_mode": "FullLanguage", "os_build": 17763,
           "missing": []}


def test_the_script_and_the_parser_hold_the_same_floor():
    numbers = dict(re.findall(r"^\$CrlfixFloor(\w+) = ([0-9]+)$", FLOOR_PS1.read_text(encoding="ascii"), re.M))
    assert (int(numbers["PowerShellMajor"]), int(numbers["PowerShellMinor"])) == _host_floor.POWERSHELL
    assert int(numbers["DotNetRelease"]) == _host_floor.DOTNET_RELEASE
    assert int(numbers["OsBuild"]) == _host_floor.OS_BUILD


def test_the_floor_check_runs_before_the_arguments_are_read():
    # ConvertFrom-Json (the $CrlfixArgs line) is PowerShell 3.0: on a 2008 R2 it would end the script first.
    lines = build_host_script("host_audit", {}).splitlines()
    floor_at = next(i for i, line in enumerate(lines) if line.startswith("$CrlfixFloorPowerShellMajor"))
    args_at = next(i for i, line in enumerate(lines) if line.startswith("$CrlfixArgs = "))
    assert 2 <= floor_at < args_at
    assert "$CrlfixFloorPowerShellMajor" not in build_host_script("winhttp_state", {})


def test_host_audit_uses_no_operator_the_powershell_20_parser_rejects():
    # Windows PowerShell parses the whole script before it runs a line: one operator of PowerShell 3.0 (-in, -notin,
    # -shl, -shr; about_Operators) anywhere would fail a 2008 R2 before its floor check could answer.
    text = pslint.code(pslint.parse(build_host_script("host_audit", {})).root_node)
    assert re.findall(r"(?i)\s-(?:in|notin|shl|shr)\s", text) == []


@pytest.mark.parametrize("build", [7601, 9600, 14393, 17763, 20348])
def test_the_twins_floor_report_parses_and_only_2008r2_and_2012r2_miss_it(build):
    floor = parse_floor(floor_report(class_for_build(build), build))
    assert floor.ok is (build >= 14393)


def test_a_host_below_the_floor_is_named_with_what_it_misses():
    floor = parse_floor(WIN2008R2)
    reason = below_floor_reason(floor)
    assert "Windows PowerShell 5.1 (found 2.0; install WMF 5.1)" in reason
    assert ".NET Framework 4.5 (Release 378389; found none)" in reason
    clm = parse_floor({**WIN2019, "language_mode": "ConstrainedLanguage", "missing": ["language_mode"]})
    assert "FullLanguage (found ConstrainedLanguage" in below_floor_reason(clm)


@pytest.mark.parametrize(("value", "field"), [
    ("nope", "floor"), ({**WIN2019, "powershell": 5}, "floor.powershell"),
    ({**WIN2019, "dotnet_release": "461814"}, "floor.dotnet_release"),
    ({**WIN2019, "os_build": None}, "floor.os_build"),
    ({**WIN2019, "missing": ["wmf"]}, "floor.missing"), ({**WIN2019, "language_mode": ""}, "floor.language_mode")])
def test_a_malformed_floor_names_the_field(value, field):
    with pytest.raises(ValueError, match=re.escape(field)):
        parse_floor(value)


def test_check_floor_passes_a_host_on_the_floor_and_refuses_one_below():
    assert check_floor({"script": "host_audit", "schema": 1}) is None  # an older script without the check
    assert check_floor({"floor": WIN2019}).ok
    with pytest.raises(HostBelowFloor, match="Windows PowerShell 5.1") as caught:
        check_floor({"script": "host_audit", "schema": 1, "floor": WIN2008R2})
    assert caught.value.floor.missing == ("powershell", "dotnet")


@pytest.mark.parametrize("check_mode", [True, False])
def test_a_host_below_the_floor_gets_one_failed_record_naming_what_is_missing(monkeypatch, check_mode):
    sent: list[str] = []

    def host(connection: t.Any, script: str, *, task_action: str) -> tuple[int, str, str]:
        sent.append(script)
        # What _host_floor.ps1 prints on a Windows Server 2008 R2 as it ships, then exit 0.
        return 0, json.dumps({"script": "host_audit", "schema": 1, "floor": WIN2008R2}) + "\r\n", ""

    monkeypatch.setattr("ansible_collections.crlfix.windows.plugins.plugin_utils._host._script.run_powershell", host)
    options = FixCrlOptions.from_args({"proxy": "proxy.contoso.com:8080", "bypass": []})
    inventory = Inventory(hostname="lync2010-fe01", group_names=("lync_servers",),
                          groups={"lync_servers": ["lync2010-fe01"]}, hostvars={})
    record = _run.run_fix_crl_host(object(), options, inventory, check_mode=check_mode, task_action="t").as_dict()
    assert len(sent) == 1  # one command, nothing after it
    assert record["status"] == "failed"
    assert "below the collection's minimum versions" in record["reason"]
    assert "Windows PowerShell 5.1 (found 2.0" in record["reason"]
    assert record["changed"] is False
