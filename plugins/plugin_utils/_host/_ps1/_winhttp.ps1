# The machine's WinHTTP proxy as Windows stores it (docs/dev/host-scripts.md, "winhttp_state"): the REG_BINARY value
# WinHttpSettings in the native and the WOW6432Node registry view, and the OS it runs on. Shared by winhttp_state,
# winhttp_apply, cert_inventory and host_audit.
$CrlfixConnectionsKey = 'SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections'
$CrlfixViewPaths = @{
    native = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections'
    wow6432 = 'HKLM:\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Internet Settings\Connections'
}

function Open-CrlfixLocalMachineKey {
    # HKLM in the 64-bit view (the native one; on a 32-bit OS there is only one) or the 32-bit view (WOW6432Node),
    # whatever the bitness of this PowerShell.
    param([string]$View)
    $registryView = [Microsoft.Win32.RegistryView]::Registry64
    if ($View -eq 'wow6432') { $registryView = [Microsoft.Win32.RegistryView]::Registry32 }
    [Microsoft.Win32.RegistryKey]::OpenBaseKey([Microsoft.Win32.RegistryHive]::LocalMachine, $registryView)
}

function Get-CrlfixOperatingSystem {
    # Build number and product name from the registry (HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion): the same
    # in every process, where [Environment]::OSVersion depends on the host process's manifest, and without WMI
    # (Get-CimInstance fails on a host whose WMI repository is broken).
    $key = (Open-CrlfixLocalMachineKey -View 'native').OpenSubKey('SOFTWARE\Microsoft\Windows NT\CurrentVersion')
    [ordered]@{
        build = [int]$key.GetValue('CurrentBuildNumber')
        caption = [string]$key.GetValue('ProductName')
        is_64bit = [Environment]::Is64BitOperatingSystem
    }
}

# RegQueryInfoKeyW (advapi32, Microsoft Learn): every output but the key's last write time may be null.
$CrlfixRegistryNative = $null

function Get-CrlfixKeyLastWrite {
    # When the key was last written (RegQueryInfoKey's lpftLastWriteTime: any value set or deleted under it, as netsh's
    # write of WinHttpSettings), as UTC text; null when it cannot be read. .NET's RegistryKey has no such property.
    param([Microsoft.Win32.RegistryKey]$Key)
    try {
        if ($null -eq $script:CrlfixRegistryNative) {
            $none = [IntPtr]
            $script:CrlfixRegistryNative = New-CrlfixNativeType -Name 'CrlfixRegistryNative' -Methods @(@{
                    Name = 'RegQueryInfoKeyW'; Dll = 'advapi32.dll'; Returns = [int]
                    Parameters = @([Microsoft.Win32.SafeHandles.SafeRegistryHandle], $none, $none, $none, $none, $none,
                        $none, $none, $none, $none, $none, [long].MakeByRefType())
                })
        }
        $fileTime = [long]0
        $zero = [IntPtr]::Zero
        $status = $script:CrlfixRegistryNative::RegQueryInfoKeyW($Key.Handle, $zero, $zero, $zero, $zero, $zero, $zero,
            $zero, $zero, $zero, $zero, [ref]$fileTime)
        if ($status -ne 0) { return $null }
        ConvertTo-CrlfixUtcText -FileTime $fileTime
    } catch {
        $null
    }
}

function Get-CrlfixWinHttpView {
    # One view: @{ path; present; value_b64; last_write } (value_b64 null when WinHttpSettings does not exist;
    # last_write the Connections key's last write time, null when the key is missing or its time cannot be read).
    param([string]$View)
    $value = $null
    $lastWrite = $null
    $key = (Open-CrlfixLocalMachineKey -View $View).OpenSubKey($CrlfixConnectionsKey)
    if ($null -ne $key) {
        $value = $key.GetValue('WinHttpSettings')
        $lastWrite = Get-CrlfixKeyLastWrite -Key $key
        $key.Close()
    }
    $valueBase64 = $null
    if ($null -ne $value) { $valueBase64 = [Convert]::ToBase64String([byte[]]$value) }
    [ordered]@{ path = $CrlfixViewPaths[$View]; present = $null -ne $value; value_b64 = $valueBase64; last_write = $lastWrite }
}

function Get-CrlfixWinHttpState {
    # The keys of a winhttp_state document after script and schema: both views (wow6432 null on a 32-bit OS), the OS,
    # and from build 20348 on the output of `netsh winhttp show advproxy`.
    $operatingSystem = Get-CrlfixOperatingSystem
    $views = [ordered]@{ native = (Get-CrlfixWinHttpView -View 'native'); wow6432 = $null }
    if ($operatingSystem.is_64bit) { $views.wow6432 = Get-CrlfixWinHttpView -View 'wow6432' }
    $advancedProxy = $null
    if ($operatingSystem.build -ge 20348) {
        $netsh = Get-CrlfixSystemProgramPath -FileName 'netsh.exe' -View 'native'
        $advancedProxy = Invoke-CrlfixNativeCommand -FilePath $netsh -ArgumentList @('winhttp', 'show', 'advproxy')
    }
    [ordered]@{ computer_name = $env:COMPUTERNAME; os = $operatingSystem; views = $views; advproxy = $advancedProxy }
}

function Get-CrlfixInternetExplorerProxy {
    # The IE (WinINet) proxy of the user this script runs as: HKCU\Software\Microsoft\Windows\CurrentVersion\
    # Internet Settings, ProxyEnable (REG_DWORD), ProxyServer and ProxyOverride (REG_SZ); null for a value that does
    # not exist. Over WinRM, HKCU is the connecting user's hive, the one netsh's import reads too.
    $settings = [ordered]@{ proxy_enable = $null; proxy_server = $null; proxy_override = $null }
    $key = [Microsoft.Win32.Registry]::CurrentUser.OpenSubKey('Software\Microsoft\Windows\CurrentVersion\Internet Settings')
    if ($null -ne $key) {
        $enable = $key.GetValue('ProxyEnable')
        if ($null -ne $enable) { $settings.proxy_enable = [int]$enable }
        $settings.proxy_server = $key.GetValue('ProxyServer')
        $settings.proxy_override = $key.GetValue('ProxyOverride')
        $key.Close()
    }
    $settings
}

function Get-CrlfixWinHttpStateDocument {
    # The whole winhttp_state document, nested in another script's document (cert_inventory, host_audit).
    $document = [ordered]@{ script = 'winhttp_state'; schema = 1 }
    $state = Get-CrlfixWinHttpState
    foreach ($key in $state.Keys) { $document[$key] = $state[$key] }
    $document
}
