# Whose proof (docs/dev/host-scripts.md, "host_audit", key identities): the accounts the named
# services run as (the SCM's ObjectName, Win32_Service.StartName), each account's SID and WinINet settings (HKU\<SID>), the
# ProxySettingsPerUser policy, the machine's WinINet settings and the WPAD switch. Reads only; the controller works
# out each identity's proxy in CryptoAPI's order (KB 2623724) from these values and the WinHttpSettings view.
$CrlfixInternetSettingsKey = 'Software\Microsoft\Windows\CurrentVersion\Internet Settings'
# StartName spellings of the built-in accounts that NTAccount.Translate does not accept (Win32_Service docs).
$CrlfixServiceAccountSids = @('S-1-5-18', 'S-1-5-19', 'S-1-5-20')
$CrlfixStartNameSids = @{
    'localsystem' = 'S-1-5-18'; 'nt authority\localservice' = 'S-1-5-19'; 'nt authority\networkservice' = 'S-1-5-20'
}

function Resolve-CrlfixAccount {
    # @{ sid; name } of an account name (SID -> NTAccount gives the name as Windows prints it); throws if unknown.
    param([string]$Name)
    $sid = $CrlfixStartNameSids[$Name.ToLowerInvariant()]
    if ($null -eq $sid) {
        $account = New-Object System.Security.Principal.NTAccount($Name)
        $sid = $account.Translate([System.Security.Principal.SecurityIdentifier]).Value
    }
    $identifier = New-Object System.Security.Principal.SecurityIdentifier($sid)
    @{ sid = $sid; name = $identifier.Translate([System.Security.Principal.NTAccount]).Value }
}

function Read-CrlfixInternetSettings {
    # The WinINet values of one Internet Settings key (null when the key does not exist): ProxyEnable, ProxyServer,
    # ProxyOverride, AutoConfigURL and the flags DWORD at byte 8 of Connections\DefaultConnectionSettings.
    param([Microsoft.Win32.RegistryKey]$Root)
    $key = $Root.OpenSubKey($CrlfixInternetSettingsKey)
    if ($null -eq $key) { return $null }
    $flags = $null
    $connections = $key.OpenSubKey('Connections')
    if ($null -ne $connections) {
        $blob = $connections.GetValue('DefaultConnectionSettings')
        if ($blob -is [byte[]] -and $blob.Length -ge 12) { $flags = [BitConverter]::ToInt32($blob, 8) }
        $connections.Close()
    }
    $settings = [ordered]@{
        proxy_enable = $key.GetValue('ProxyEnable'); proxy_server = $key.GetValue('ProxyServer')
        proxy_override = $key.GetValue('ProxyOverride'); auto_config_url = $key.GetValue('AutoConfigURL')
        connection_flags = $flags
    }
    $key.Close()
    $settings
}

function Get-CrlfixAccountPart {
    # One account: its SID, whether its profile hive is loaded under HKU, its WinINet settings, or the error.
    param([string]$Name)
    $entry = [ordered]@{ name = $Name; requested = $Name; sid = $null; hive_loaded = $false; ie = $null; error = $null }
    try {
        $resolved = Resolve-CrlfixAccount -Name $Name
        $entry.name = $resolved.name
        $entry.sid = $resolved.sid
        $users = [Microsoft.Win32.RegistryKey]::OpenBaseKey([Microsoft.Win32.RegistryHive]::Users,
            [Microsoft.Win32.RegistryView]::Registry64)
        $hive = $users.OpenSubKey($resolved.sid)
        if ($null -ne $hive) {
            $entry.hive_loaded = $true
            $entry.ie = Read-CrlfixInternetSettings -Root $hive
            $hive.Close()
        }
    } catch {
        $entry.error = Get-CrlfixErrorText -Failure $_
    }
    $entry
}

# services: the service's process, read with advapi32/kernel32 (Microsoft Learn: OpenSCManagerW, OpenServiceW,
# QueryServiceStatusEx with SC_STATUS_PROCESS_INFO, OpenProcess, GetProcessTimes); no WMI.
$CrlfixServiceNative = $null

function Get-CrlfixServiceProcess {
    # The process a service runs in and when it started: @{ process_id; process_started; process_error }. The SCM's
    # SERVICE_STATUS_PROCESS.dwProcessId (0: the service runs no process now, process_id null); the start is the
    # process's creation time (GetProcessTimes; PROCESS_QUERY_LIMITED_INFORMATION is enough, Windows Vista and later).
    # A service sharing a svchost process reports that process's start. Every failure is the text of its Win32 error.
    param([string]$Name)
    $found = [ordered]@{ process_id = $null; process_started = $null; process_error = $null }
    try {
        if ($null -eq $script:CrlfixServiceNative) {
            $byReference = [long].MakeByRefType()
            $script:CrlfixServiceNative = New-CrlfixNativeType -Name 'CrlfixServiceNative' -Methods @(
                @{ Name = 'OpenSCManagerW'; Dll = 'advapi32.dll'; Returns = [IntPtr]; Parameters = @([string], [string], [int]) },
                @{ Name = 'OpenServiceW'; Dll = 'advapi32.dll'; Returns = [IntPtr]; Parameters = @([IntPtr], [string], [int]) },
                @{ Name = 'QueryServiceStatusEx'; Dll = 'advapi32.dll'; Returns = [bool]
                    Parameters = @([IntPtr], [int], [byte[]], [int], [int].MakeByRefType()) },
                @{ Name = 'CloseServiceHandle'; Dll = 'advapi32.dll'; Returns = [bool]; Parameters = @([IntPtr]) },
                @{ Name = 'OpenProcess'; Dll = 'kernel32.dll'; Returns = [IntPtr]; Parameters = @([int], [bool], [int]) },
                @{ Name = 'GetProcessTimes'; Dll = 'kernel32.dll'; Returns = [bool]
                    Parameters = @([IntPtr], $byReference, $byReference, $byReference, $byReference) },
                @{ Name = 'CloseHandle'; Dll = 'kernel32.dll'; Returns = [bool]; Parameters = @([IntPtr]) }
            )
        }
        $native = $script:CrlfixServiceNative
        # SC_MANAGER_CONNECT 0x1, SERVICE_QUERY_STATUS 0x4, SC_STATUS_PROCESS_INFO 0 (SERVICE_STATUS_PROCESS: 36 bytes,
        # dwProcessId at offset 28), PROCESS_QUERY_LIMITED_INFORMATION 0x1000.
        $manager = $native::OpenSCManagerW($null, $null, 1)
        if ($manager -eq [IntPtr]::Zero) { throw [System.ComponentModel.Win32Exception]::new() }
        try {
            $service = $native::OpenServiceW($manager, $Name, 4)
            if ($service -eq [IntPtr]::Zero) { throw [System.ComponentModel.Win32Exception]::new() }
            try {
                $status = [byte[]]::new(36)
                $needed = 0
                if (-not $native::QueryServiceStatusEx($service, 0, $status, $status.Length, [ref]$needed)) {
                    throw [System.ComponentModel.Win32Exception]::new()
                }
                $processId = [BitConverter]::ToInt32($status, 28)
            } finally {
                [void]$native::CloseServiceHandle($service)
            }
        } finally {
            [void]$native::CloseServiceHandle($manager)
        }
        if ($processId -eq 0) { return $found }
        $found.process_id = $processId
        $process = $native::OpenProcess(0x1000, $false, $processId)
        if ($process -eq [IntPtr]::Zero) { throw [System.ComponentModel.Win32Exception]::new() }
        try {
            $created = [long]0
            $exited = [long]0
            $kernel = [long]0
            $user = [long]0
            if (-not $native::GetProcessTimes($process, [ref]$created, [ref]$exited, [ref]$kernel, [ref]$user)) {
                throw [System.ComponentModel.Win32Exception]::new()
            }
            $found.process_started = ConvertTo-CrlfixUtcText -FileTime $created
        } finally {
            [void]$native::CloseHandle($process)
        }
    } catch {
        $found.process_error = Get-CrlfixErrorText -Failure $_
    }
    $found
}

function Get-CrlfixIdentitiesPart {
    # The identities part: services (name, found, start_name, state, account), accounts, the caller (HKCU), the
    # per-user policy, the machine's WinINet settings, the WPAD switch (DisableWpad, 1809+).
    param([object]$Request)
    $services = @()
    $names = [System.Collections.Generic.List[string]]::new()
    foreach ($name in @($Request.accounts)) { if (-not $names.Contains([string]$name)) { $names.Add([string]$name) } }
    foreach ($serviceName in @($Request.services)) {
        # The SCM keeps a service's account in its key's ObjectName (what QueryServiceConfig and
        # Win32_Service.StartName return); Get-Service asks the SCM for its state, without WMI.
        $entry = [ordered]@{ name = [string]$serviceName; found = $false; start_name = $null; state = $null
            account = $null; error = $null; process_id = $null; process_started = $null; process_error = $null }
        $serviceKey = $null
        if ([string]$serviceName -notmatch '[\\/]') {
            $serviceKey = (Open-CrlfixLocalMachineKey -View 'native').OpenSubKey(
                'SYSTEM\CurrentControlSet\Services\' + [string]$serviceName)
        }
        if ($null -ne $serviceKey) {
            $entry.found = $true
            $entry.start_name = [string]$serviceKey.GetValue('ObjectName')
            $serviceKey.Close()
            $service = Get-Service -Name ([string]$serviceName) -ErrorAction SilentlyContinue
            if ($null -ne $service) { $entry.state = [string]$service.Status }
            # The running process and its start, beside the proxy value's last write (winhttp views' last_write): a
            # process older than the value may still hold what it read before (docs/dev/host-scripts.md).
            $process = Get-CrlfixServiceProcess -Name ([string]$serviceName)
            foreach ($key in $process.Keys) { $entry[$key] = $process[$key] }
            try {
                $entry.account = (Resolve-CrlfixAccount -Name $entry.start_name).name
            } catch {
                $entry.error = Get-CrlfixErrorText -Failure $_
            }
            if ($Request.accounts_from_services -and $null -ne $entry.account -and -not $names.Contains($entry.account)) {
                $names.Add($entry.account)
            }
        }
        $services += $entry
    }
    $machine = Open-CrlfixLocalMachineKey -View 'native'
    $policy = $machine.OpenSubKey('SOFTWARE\Policies\Microsoft\Windows\CurrentVersion\Internet Settings')
    $perUser = $true
    if ($null -ne $policy) {
        if ($policy.GetValue('ProxySettingsPerUser') -eq 0) { $perUser = $false }
        $policy.Close()
    }
    $wpadKey = $machine.OpenSubKey('SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\WinHttp')
    $wpadDisabled = $false
    if ($null -ne $wpadKey) {
        $wpadDisabled = $wpadKey.GetValue('DisableWpad') -eq 1
        $wpadKey.Close()
    }
    $current = [System.Security.Principal.WindowsIdentity]::GetCurrent()
    $caller = [ordered]@{
        name = $current.Name; sid = $current.User.Value; hive_loaded = $true
        ie = Read-CrlfixInternetSettings -Root ([Microsoft.Win32.Registry]::CurrentUser)
    }
    [ordered]@{
        services = $services
        accounts = @(foreach ($name in $names) { Get-CrlfixAccountPart -Name $name })
        caller = $caller
        per_user = $perUser
        machine_ie = Read-CrlfixInternetSettings -Root $machine
        wpad_disabled = $wpadDisabled
    }
}
