"""The Windows-fidelity review of the host PowerShell, held as structural checks.

Nothing here runs PowerShell: each test reads the tree-sitter parse of the real scripts (tests/pslint's tree API) and
fails on the scripts as they were before the fixes. docs/dev/host-scripts.md says what each fix does and why.
"""

from __future__ import annotations

import re

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import (
    PS1_DIR,
    SCRIPT_SCHEMA,
    build_host_script,
)
from tests import pslint

FILES = sorted(PS1_DIR.glob("*.ps1"))
# The commands of the Microsoft.PowerShell.Core module (Windows PowerShell 5.1): all a runspace made from
# InitialSessionState.CreateDefault2() has without loading a module.
CORE_COMMANDS = {name.lower() for name in """
Add-History Add-PSSnapin Clear-History Connect-PSSession Debug-Job Disable-PSRemoting Disable-PSSessionConfiguration
Disconnect-PSSession Enable-PSRemoting Enable-PSSessionConfiguration Enter-PSHostProcess Enter-PSSession
Exit-PSHostProcess Exit-PSSession Export-Console Export-ModuleMember ForEach-Object Get-Command Get-Help Get-History
Get-Job Get-Module Get-PSHostProcessInfo Get-PSSession Get-PSSessionCapability Get-PSSessionConfiguration Get-PSSnapin
Import-Module Invoke-Command Invoke-History New-Module New-ModuleManifest New-PSRoleCapabilityFile New-PSSession
New-PSSessionConfigurationFile New-PSSessionOption New-PSTransportOption Out-Default Out-Host Out-Null Receive-Job
Receive-PSSession Register-ArgumentCompleter Register-PSSessionConfiguration Remove-Job Remove-Module Remove-PSSession
Remove-PSSnapin Resume-Job Save-Help Set-PSDebug Set-PSSessionConfiguration Set-StrictMode Start-Job Stop-Job
Suspend-Job Test-ModuleManifest Test-PSSessionConfigurationFile Unregister-PSSessionConfiguration Update-Help Wait-Job
Where-Object
""".split()}


def code(path) -> str:
    """A file's PowerShell without its comments (a check must not read a comment)."""
    return pslint.code(pslint.parse(path.read_bytes()).root_node)


def tree(name: str):
    return pslint.parse((PS1_DIR / f"{name}.ps1").read_bytes()).root_node


def function_body(name: str, function: str):
    found = pslint.functions(tree(name))
    assert function in found, f"{name}.ps1 defines no {function}"
    return found[function]


def member_calls(node) -> list[str]:
    """``Type::Method(`` and ``.Method(`` calls under ``node``, as written (``[Environment]::Exit``, ``.Open``)."""
    calls = []
    for current in pslint.walk(node):
        if current.type in ("member_access", "invokation_expression") and any(
                child.type == "argument_list" for child in current.children):
            calls.append(pslint.text(current).split("(", 1)[0])
    return calls


def job_script_blocks() -> dict[str, object]:
    """The script blocks the pool runs: top-level ``$Crlfix<Name>Job = { ... }`` assignments of every file."""
    found = {}
    for path in FILES:
        root = pslint.parse(path.read_bytes()).root_node
        for statement in pslint.top_level_statements(root):
            match = re.match(r"\$(Crlfix\w*Job)\s*=\s*\{", pslint.text(statement))
            if match:
                found[match.group(1)] = statement
    return found


# --- 1. TLS: the protocols offered, the OS build ------------------------------------------------------------------

def test_no_script_reads_the_os_version_through_the_process_manifest() -> None:
    for path in FILES:
        assert "OSVersion" not in code(path), f"{path.name} reads [Environment]::OSVersion"


def test_the_probes_never_offer_tls13_by_name_and_try_the_os_default_first() -> None:
    text = code(PS1_DIR / "_tls.ps1")
    assert "Tls13" not in text and "12288" not in text
    body = pslint.text(function_body("_tls", "Get-CrlfixTlsProtocols"))
    assert "[System.Security.Authentication.SslProtocols]::None" in body
    assert "[System.IO.MemoryStream]::new()" in body  # tried in memory: nothing is sent anywhere


# --- 2 and 3. A known end on every transport; the psrp pool -------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SCRIPT_SCHEMA))
def test_every_built_script_ends_with_its_document_and_the_explicit_exit(name: str) -> None:
    statements = pslint.top_level_statements(pslint.parse(build_host_script(name, {})).root_node)
    names = [pslint.statement_command_name(statement) for statement in statements[-2:]]
    assert names == ["Write-CrlfixDocument", "Exit-CrlfixScript"]


def test_the_exit_ends_the_process_under_consolehost_and_stops_the_pools_elsewhere() -> None:
    exit_function = function_body("_common", "Exit-CrlfixScript")
    body = pslint.top_level_statements(exit_function)
    assert body[-1].type == "flow_control_statement" and pslint.text(body[-1]).startswith("exit")
    calls = member_calls(exit_function)
    assert "[Environment]::Exit" in calls
    assert any(call.endswith(".BeginStop") for call in calls) and any(call.endswith(".BeginClose") for call in calls)
    assert "'ConsoleHost'" in pslint.text(exit_function)


def test_the_document_is_flushed_before_the_process_exits() -> None:
    writer = function_body("_common", "Write-CrlfixDocument")
    calls = member_calls(writer)
    assert "[Console]::Out.WriteLine" in calls and "[Console]::Out.Flush" in calls
    assert "Write-Output" in {pslint.command_name(command) for command in pslint.commands(writer)}  # psrp


def test_a_missing_program_answers_instead_of_writing_an_error() -> None:
    native = function_body("_common", "Invoke-CrlfixNativeCommand")
    assert "[System.IO.File]::Exists" in member_calls(native)


def test_an_uncaught_error_also_ends_through_the_one_exit() -> None:
    traps = [node for node in pslint.walk(tree("_common")) if node.type == "trap_statement"]
    assert len(traps) == 1 and "Exit-CrlfixScript -Failure $_" in pslint.text(traps[0])


# --- 4. Synchronous requests in the pool; no polling ----------------------------------------------------------------

def test_no_script_polls_a_request_or_sleeps() -> None:
    for path in FILES:
        text = code(path)
        assert "WaitForResponse" not in text, path.name
        assert "Start-Sleep" not in text, path.name


def test_every_request_is_synchronous_and_runs_in_a_pool_job() -> None:
    jobs = job_script_blocks()
    assert {"CrlfixFetchJob", "CrlfixProbeJob"} <= set(jobs)
    opens = [call for path in FILES for call in member_calls(pslint.parse(path.read_bytes()).root_node)
             if call.endswith(".Open") and "request" in call.lower()]
    assert set(opens) == {"$request.Open"}
    job = pslint.text(jobs["CrlfixFetchJob"])
    assert "$request.Open('GET', $Url, $false)" in job
    # The foreign-agent request (host-scripts.md, "The foreign agent") is synchronous too, and body-less.
    assert "$request.Open('HEAD', $Url, $false)" in job


def test_the_foreign_agent_request_follows_a_kept_answer_and_reports_the_agent_it_sent() -> None:
    # host-scripts.md, "The foreign agent": the first answer is handed over before the second request starts; the
    # second sends the object's own agent (no SetRequestHeader), read back with WinHttpRequestOption_UserAgentString.
    job = pslint.text(job_script_blocks()["CrlfixFetchJob"])
    kept, head = job.index("$State.result = $result"), job.index("$request.Open('HEAD', $Url, $false)")
    assert kept < job.index("$State.started_ms = $Clock.ElapsedMilliseconds", kept) < head
    assert "$foreign.agent = [string]$request.Option(0)" in job[head:]
    assert "SetRequestHeader" not in job[head:] and "ResponseBody" not in job[head:]
    assert "if (-not $ForeignAgent -or $null -eq $result.status) { return }" in job
    complete = pslint.text(function_body("_crl", "Complete-CrlfixFetch"))
    assert "Complete-CrlfixFetchResult -State $job.State -ForeignAgent $Fetch.ForeignAgent -ErrorText $text" in complete
    assert "ForeignAgent = @{ Name = 'foreign_agent'; Default = $false }" in (PS1_DIR / "_crl.ps1").read_text()


def test_the_pool_runs_sta_threads_for_the_apartment_threaded_com_class() -> None:
    assert "$pool.ApartmentState = [System.Threading.ApartmentState]::STA" in pslint.text(
        function_body("_pool", "New-CrlfixRunspacePool"))


def test_the_wait_sleeps_on_wait_handles() -> None:
    assert "[System.Threading.WaitHandle]::WaitAny" in member_calls(function_body("_pool", "Wait-CrlfixJobs"))


# --- 5. The document's cap ----------------------------------------------------------------------------------------

def test_the_fetch_keeps_the_bodies_of_one_document_under_a_cap() -> None:
    job = pslint.text(job_script_blocks()["CrlfixFetchJob"])
    assert "$Budget.left_bytes" in job and "'document_cap'" in job
    assert "MaxDocumentBytes" in pslint.text(function_body("_crl", "Start-CrlfixFetch"))
    for name, arguments in (("crl_fetch", "CrlfixArgs"), ("host_audit", "crl")):
        built = pslint.parse(build_host_script(name, {"crl": {}})).root_node  # the option tables live in the fragments
        assert "max_document_bytes" in pslint.defaulted_reads(built, arguments), name


def test_a_body_is_encoded_without_a_copy_of_the_array() -> None:
    job = job_script_blocks()["CrlfixFetchJob"]
    assert "[Convert]::ToBase64String" in member_calls(job)
    assert "[Array]::Copy" not in member_calls(job)


# --- 6. The pool: CreateDefault2, opened before the time box -------------------------------------------------------

def test_the_pool_loads_only_the_core_module_and_opens_every_runspace_at_once() -> None:
    body = pslint.text(function_body("_pool", "New-CrlfixRunspacePool"))
    assert "[System.Management.Automation.Runspaces.InitialSessionState]::CreateDefault2()" in body
    assert "CreateRunspacePool($size, $size, $sessionState, $Host)" in body
    assert "$pool.Open()" in body


def test_host_audit_opens_the_pool_before_the_time_box_starts() -> None:
    statements = [pslint.text(statement) for statement in pslint.top_level_statements(tree("host_audit"))]
    pool = next(index for index, text in enumerate(statements) if "New-CrlfixRunspacePool" in text)
    box = next(index for index, text in enumerate(statements) if "[hashtable]::Synchronized(@{" in text
               and "LimitMs" in text)
    fetch = next(index for index, text in enumerate(statements) if "Start-CrlfixFetch" in text)
    assert pool < box < fetch


@pytest.mark.parametrize("job", ["CrlfixFetchJob", "CrlfixProbeJob"])
def test_a_job_uses_no_command_outside_the_core_module(job: str) -> None:
    block = job_script_blocks()[job]
    used = {(pslint.command_name(command) or "").lower() for command in pslint.commands(block)} - {""}
    assert used <= CORE_COMMANDS, used - CORE_COMMANDS


# --- 7. The smaller findings ----------------------------------------------------------------------------------------

def test_array_type_data_is_removed_once_for_every_script() -> None:
    holders = [path.name for path in FILES if "Remove-TypeData" in code(path)]
    assert holders == ["_common.ps1"]


def test_apply_compares_only_when_the_operations_carry_expectations() -> None:
    statements = pslint.text(tree("winhttp_apply"))
    assert "$operation.PSObject.Properties['expect_b64']" in statements
    assert "if ($comparesViews)" in statements


def test_a_store_name_is_checked_before_it_becomes_a_path() -> None:
    body = pslint.text(function_body("_stores", "Read-CrlfixCertificateStores"))
    check, path = body.index("-cnotmatch $CrlfixStoreNamePattern"), body.index("'Cert:\\LocalMachine\\' + $name")
    assert check < path
    assert "throw" in body[check:path]


def test_the_probe_socket_is_dual_mode() -> None:
    job = pslint.text(job_script_blocks()["CrlfixProbeJob"])
    assert "$client.Client.DualMode = $true" in job
    assert "[System.Net.Sockets.TcpClient]::new()" not in job and "New-Object" not in job


def test_no_script_asks_wmi() -> None:
    for path in FILES:
        text = code(path)
        assert "Get-CimInstance" not in text and "Get-WmiObject" not in text, path.name
    assert "CurrentBuildNumber" in pslint.text(function_body("_winhttp", "Get-CrlfixOperatingSystem"))


def test_constrained_language_mode_is_named_before_anything_it_blocks() -> None:
    statements = pslint.top_level_statements(tree("_common"))
    texts = [pslint.text(statement) for statement in statements]
    check = next(index for index, statement in enumerate(statements)
                 if statement.type == "if_statement" and "LanguageMode -ne 'FullLanguage'" in texts[index])
    assert "FullLanguage required" in texts[check]
    # Before it only definitions, the preference and the trap: nothing a restricted language would refuse.
    assert all(statement.type in ("function_statement", "trap_statement", "comment") or texts[index].startswith(
        "$ErrorActionPreference") for index, statement in enumerate(statements[:check]))
