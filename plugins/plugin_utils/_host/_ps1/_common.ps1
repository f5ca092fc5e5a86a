$ErrorActionPreference = 'Stop'
$CrlfixConn = 'SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections'
$CrlfixX64 = [Environment]::Is64BitOperatingSystem
function Get-CrlfixKey($View, $Write) {
    $b = [Microsoft.Win32.RegistryKey]::OpenBaseKey('LocalMachine', ('Registry64', 'Registry32')[$View -eq 'wow6432'])
    if ($Write) { $b.CreateSubKey($CrlfixConn) } else { $b.OpenSubKey($CrlfixConn) }
}
function Get-CrlfixNetsh($View) {
    $d = if ($View -eq 'wow6432') { 'SysWOW64' } else { ('System32', 'Sysnative')[$CrlfixX64 -and [IntPtr]::Size -eq 4] }
    "$env:windir\$d\netsh.exe"
}
function Invoke-CrlfixNative($Exe, [string[]]$Argv) {
    $ErrorActionPreference = 'Continue'
    $global:LASTEXITCODE = 1
    $o = & $Exe @Argv 2>&1 | ForEach-Object { "$_" }
    @{ rc = $LASTEXITCODE; output = $o -join "`n" }
}
function Get-CrlfixWinHttpState {
    $os = Get-CimInstance Win32_OperatingSystem
    $w = @{ native = $null; wow6432 = $null }
    foreach ($v in ('native', 'wow6432')[0..[int]$CrlfixX64]) {
        $k = Get-CrlfixKey $v
        $b = $null
        if ($k) { $b = $k.GetValue('WinHttpSettings') }
        $w[$v] = @{ path = 'HKLM:\' + $CrlfixConn.Insert(9, ('', 'WOW6432Node\')[$v -ne 'native'])
            present = $null -ne $b; value_b64 = $(if ($null -ne $b) { [Convert]::ToBase64String($b) }) }
    }
    $n = [int]$os.BuildNumber
    [ordered]@{ computer_name = $env:COMPUTERNAME; os = @{ build = $n; caption = $os.Caption; is_64bit = $CrlfixX64 }; views = $w
        advproxy = $(if ($n -ge 20348) { Invoke-CrlfixNative (Get-CrlfixNetsh 'native') @('winhttp', 'show', 'advproxy') }) }
}
function Write-CrlfixDocument($Name, $Schema, $Data) {
    $d = [ordered]@{ script = $Name; schema = $Schema }
    foreach ($k in $Data.Keys) { $d[$k] = $Data[$k] }
    [regex]::Replace(($d | ConvertTo-Json -Compress -Depth 8), '[^\x00-\x7F]', { '\u{0:x4}' -f [int][char]"$args" })
}
