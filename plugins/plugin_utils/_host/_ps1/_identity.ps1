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
            account = $null; error = $null }
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
