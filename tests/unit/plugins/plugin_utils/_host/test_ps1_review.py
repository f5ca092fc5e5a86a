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


# --- The second review (docs/dev/host-scripts.md, "The second review"): R3, F2, F3, U4, R4, U5 and the evidence
# for a stale running service ---------------------------------------------------------------------------------------

def test_f2_every_sample_is_read_through_the_tap_and_labelled_full_or_resumed() -> None:
    job = pslint.code(job_script_blocks()["CrlfixProbeJob"])
    # The SslStream reads and writes through the tap; its reading of the TLS records becomes the sample's labels.
    assert "$tap = $TapType::new($inner, $HelloSent)" in job and "[System.Net.Security.SslStream]::new($inner" in job
    for field in ("$sample.handshake = $tap.Kind", "$sample.certificate_requested = $tap.CertificateRequested",
                  "$sample.certificate_sent = $tap.CertificateSent"):
        assert field in job
    source = (PS1_DIR / "_tls.ps1").read_text()
    # Full: the server's Certificate message (11); resumed: ChangeCipherSpec (20) before it, or TLS 1.3's
    # pre_shared_key (41) in the ServerHello (RFC 5246 7.3, RFC 8446 4.2.11).
    assert 'else if (server && type == 11) { Kind = "full"; }' in source
    assert "if (Kind == null && !EncryptedHandshake) { Kind = \"resumed\"; }" in source
    assert "if (extension == 41) { preSharedKey = true; }" in source


def test_f2_the_certificate_handshake_goes_first_and_the_one_sided_one_waits_for_its_client_hello() -> None:
    # .NET starts a certificate credential's first handshake anonymously (SecureChannel.AcquireClientCredentials), so
    # an anonymous handshake to the peer before it would be resumed and no certificate sent: the one-sided handshake
    # waits for the first sample's ClientHello, in a runspace of its own.
    job = pslint.code(job_script_blocks()["CrlfixProbeJob"])
    one_sided = job[job.index("if ($OneSided) {"):]
    assert one_sided.index("$Hello.WaitOne(") < one_sided.index("& $handshake $null $null")
    assert "if ($sampleIndex -eq 0) { $helloSent = $Hello }" in job
    start = pslint.code(function_body("_tls", "Start-CrlfixProbes"))
    assert "$Prepared.Tap.Type, $hello, $true)" in start  # the one-sided job, beside the samples' job
    assert "$probes.RunspaceCount = 2 * $PeerCount" in pslint.code(function_body("_tls", "Initialize-CrlfixProbes"))


def test_r3_the_probe_presents_the_services_certificate() -> None:
    body = pslint.code(function_body("_tls", "Get-CrlfixClientCertificate"))
    assert "'1.3.6.1.5.5.7.3.1'" in body and "'1.3.6.1.5.5.7.3.2'" not in body
    assert "$certificate.Thumbprint -eq $Thumbprint" in body and "-contains $Fqdn" in body
    # The SAN's dNSName entries from the DER ([2] IA5String), not Format()'s localized text.
    names = pslint.code(function_body("_tls", "Get-CrlfixSubjectDnsNames"))
    assert "$tag -eq 0x82" in names and ".Format(" not in names
    # Every script that probes presents what Initialize-CrlfixProbes chose, with the arguments' thumbprint and FQDN.
    init = pslint.code(function_body("_tls", "Initialize-CrlfixProbes"))
    assert "-Name 'client_certificate'" in init and "-Name 'thumbprint'" in init and "-Name 'fqdn'" in init
    assert "Get-CrlfixClientCertificate" not in code(PS1_DIR / "host_audit.ps1")


def test_f3_the_restart_waits_for_the_port_before_it_probes() -> None:
    statements = [pslint.text(s) for s in pslint.top_level_statements(tree("service_restart"))]
    wait = next(i for i, text in enumerate(statements) if "Wait-CrlfixListening -HostName" in text)
    restart = next(i for i, text in enumerate(statements) if "$service.WaitForStatus('Running', $waitTime)" in text)
    document = next(i for i, text in enumerate(statements) if "Invoke-CrlfixTlsProbes" in text)
    assert restart < wait < document
    body = pslint.code(function_body("service_restart", "Wait-CrlfixListening"))
    assert "ConnectAsync($HostName, $Port).Wait(" in body and "$clock.ElapsedMilliseconds + 500 -ge $WaitMs" in body


def test_u4_service_statuses_are_strings_not_a_type_that_may_not_be_loaded() -> None:
    text = code(PS1_DIR / "service_restart.ps1")
    assert "[System.ServiceProcess." not in text
    assert "WaitForStatus('Stopped', $waitTime)" in text and "WaitForStatus('Running', $waitTime)" in text


def _depth(value: object, level: int = 0) -> int:
    """The level of the deepest dictionary or array (the document itself is level 0), as ConvertTo-Json counts."""
    if isinstance(value, dict):
        return max([level] + [_depth(item, level + 1) for item in value.values()])
    if isinstance(value, list):
        return max([level] + [_depth(item, level + 1) for item in value])
    return level


def test_r4_convertto_json_goes_deeper_than_the_deepest_document() -> None:
    # host_audit's identities.accounts[].run.chains[].elements[].status: 5.1 writes what lies deeper than -Depth as a
    # type name, so the list of flags arrived as text at -Depth 8.
    deepest = {"identities": {"accounts": [{"run": {"chains": [{"elements": [{"status": ["Revoked"]}]}]}}]},
               "tls": {"results": [{"samples": [{"chain_status": ["OfflineRevocation"]}]}]},
               "evidence": {"events": [{"hours": {"2026-12-03T09:00:00Z": 3}}]}}
    depth = int(re.search(r"\$CrlfixDocumentDepth = (\d+)", (PS1_DIR / "_common.ps1").read_text()).group(1))
    assert _depth(deepest) <= depth
    assert "-Depth $CrlfixDocumentDepth" in pslint.code(function_body("_common", "Write-CrlfixDocument"))


def test_u5_the_agent_goes_through_the_documented_option() -> None:
    job = pslint.code(job_script_blocks()["CrlfixFetchJob"])
    get = job[job.index("$request.Open('GET', $Url, $false)"):job.index("$request.Send()")]
    assert "$request.Option(0) = $UserAgent" in get and "SetRequestHeader" not in job


def test_the_winhttp_views_and_the_services_carry_their_times_for_a_stale_service() -> None:
    view = pslint.code(function_body("_winhttp", "Get-CrlfixWinHttpView"))
    assert "last_write = $lastWrite" in view and "Get-CrlfixKeyLastWrite -Key $key" in view
    assert "'RegQueryInfoKeyW'" in pslint.code(function_body("_winhttp", "Get-CrlfixKeyLastWrite"))
    process = pslint.code(function_body("_identity", "Get-CrlfixServiceProcess"))
    exports = ("'OpenSCManagerW'", "'OpenServiceW'", "'QueryServiceStatusEx'", "'OpenProcess'", "'GetProcessTimes'")
    for export in exports:
        assert export in process
    assert "$found.process_error = Get-CrlfixErrorText -Failure $_" in process  # every failure is data
    part = pslint.code(function_body("_identity", "Get-CrlfixIdentitiesPart"))
    assert "process_id = $null; process_started = $null; process_error = $null" in part
    # P/Invoke without compiling C#: Reflection.Emit, no Add-Type for these.
    assert "Add-Type" not in process and "DefineMethod" in pslint.code(function_body("_common", "New-CrlfixNativeType"))


# --- 8. The identity runs (script review W1, W2, R1, R2, F1, F4) ----------------------------------------------------

# The ScheduledTasks module's cmdlets: Windows Server 2012 and later only, and CIM (WMI) underneath.
SCHEDULED_TASKS_CMDLETS = {name.lower() for name in """
Disable-ScheduledTask Enable-ScheduledTask Export-ScheduledTask Get-ClusteredScheduledTask Get-ScheduledTask
Get-ScheduledTaskInfo New-ScheduledTask New-ScheduledTaskAction New-ScheduledTaskPrincipal New-ScheduledTaskSettingsSet
New-ScheduledTaskTrigger Register-ClusteredScheduledTask Register-ScheduledTask Set-ClusteredScheduledTask
Set-ScheduledTask Start-ScheduledTask Stop-ScheduledTask Unregister-ClusteredScheduledTask Unregister-ScheduledTask
""".split()}


def identity_function(function: str) -> str:
    """A function of _identity_run.ps1 without its comments."""
    return pslint.code(function_body("_identity_run", function))


def test_no_script_calls_a_scheduledtasks_cmdlet() -> None:
    for path in FILES:
        root = pslint.parse(path.read_bytes()).root_node
        used = {(pslint.command_name(command) or "").lower() for command in pslint.commands(root)}
        assert not used & SCHEDULED_TASKS_CMDLETS, (path.name, used & SCHEDULED_TASKS_CMDLETS)


def test_the_identity_runs_drive_task_schedulers_com_api() -> None:
    runs = identity_function("Start-CrlfixIdentityRuns")
    assert "New-Object -ComObject 'Schedule.Service'" in runs and "$session.service.Connect()" in runs
    calls = member_calls(function_body("_identity_run", "Start-CrlfixIdentityRun"))
    assert "$TaskFolder.RegisterTaskDefinition" in calls and "$run.registered.Run" in calls


def test_the_task_runs_the_64_bit_powershell_from_system32_never_sysnative() -> None:
    body = identity_function("Start-CrlfixIdentityRun")
    assert ("$powershell = [System.IO.Path]::Combine($env:windir, 'System32', 'WindowsPowerShell', 'v1.0', "
            "'powershell.exe')") in body
    assert "$action.Path = $powershell" in body
    assert "Get-CrlfixSystemProgramPath" not in body and "Sysnative" not in pslint.code(tree("_identity_run"))


def test_the_probe_is_an_encoded_command_and_no_script_file_exists() -> None:
    text = pslint.code(tree("_identity_run"))
    assert not re.search(r"-File\b", text) and ".ps1" not in text
    assert "'-NoProfile -NonInteractive -EncodedCommand ' + (Get-CrlfixProbeCommand" in identity_function(
        "Start-CrlfixIdentityRun")
    assert "[System.Text.Encoding]::Unicode.GetBytes($text)" in identity_function("Get-CrlfixProbeCommand")


def test_a_task_may_start_and_keep_running_on_batteries() -> None:
    body = identity_function("Start-CrlfixIdentityRun")
    assert "$definition.Settings.DisallowStartIfOnBatteries = $false" in body
    assert "$definition.Settings.StopIfGoingOnBatteries = $false" in body


def test_the_runs_wait_by_their_own_bounded_deadline_not_the_time_box() -> None:
    statements = [pslint.text(s) for s in pslint.top_level_statements(tree("host_audit"))]
    complete = next(text for text in statements if "Complete-CrlfixIdentityRuns" in text)
    assert "$document.identities['deadline_ms']" in complete and "timeBox" not in complete
    deadline = next(s for s in pslint.top_level_statements(tree("_identity_run"))
                    if pslint.text(s).startswith("$CrlfixIdentityDeadline"))
    assert "Default = 30000; Minimum = 1000; Maximum = 300000" in pslint.text(deadline)
    assert "throw" in identity_function("Get-CrlfixIdentityDeadline")


def test_a_task_that_ended_without_a_result_is_read_for_its_last_task_result() -> None:
    body = identity_function("Complete-CrlfixIdentityRuns")
    assert "LastTaskResult" in body and "$run.outcome = 'no_result'" in body and "$run.outcome = 'late'" in body


def test_no_script_removes_anything_recursively() -> None:
    for path in FILES:
        root = pslint.parse(path.read_bytes()).root_node
        for command in pslint.commands(root):
            if (pslint.command_name(command) or "").lower() == "remove-item":
                assert "-recurse" not in pslint.text(command).lower(), path.name
        assert "Directory]::Delete($Path, $true)" not in pslint.code(root), path.name


def test_the_work_folder_check_refuses_links_foreign_owners_and_inherited_or_open_acls() -> None:
    body = identity_function("Get-CrlfixWorkFolderProblem")
    for needle in ("[System.IO.FileAttributes]::ReparsePoint", "$security.AreAccessRulesProtected",
                   ".GetOwner([System.Security.Principal.SecurityIdentifier])", ".GetAccessRules($true, $true"):
        assert needle in body, needle
    assert body.index("ReparsePoint") < body.index("GetAccessControl")  # a link is refused before anything is read


def test_the_work_folder_is_created_with_its_protected_dacl() -> None:
    body = identity_function("New-CrlfixProtectedFolder")
    assert "$security.SetAccessRuleProtection($true, $false)" in body
    assert "[System.IO.Directory]::CreateDirectory($Path, $security)" in body


def test_removal_deletes_links_as_links_and_never_descends() -> None:
    body = identity_function("Remove-CrlfixWorkItem")
    assert body.index("ReparsePoint") < body.index("GetFileSystemInfos")
    deletes = re.findall(r"\[System\.IO\.Directory\]::Delete\(([^)]*)\)", body)
    assert deletes and all(arguments.endswith("$false") for arguments in deletes), deletes


def test_the_work_folder_is_checked_before_any_task_and_a_refused_one_stops_the_runs() -> None:
    body = identity_function("Start-CrlfixIdentityRuns")
    check = body.index("Test-CrlfixWorkRoot -WorkFolder $workFolder")
    stop = body.index("if (-not $session.root_trusted) { return $session }")
    assert check < stop < body.index("Get-CrlfixTaskFolder -Service $session.service -Create") < body.index(
        "Start-CrlfixIdentityRun ")
    leftovers = identity_function("Remove-CrlfixIdentityLeftover")
    assert "if ($FolderTrusted -and" in leftovers and "Remove-CrlfixWorkItem -Path $folder" in leftovers
