# The collection's floor, checked at first contact (docs/dev/host-scripts.md, "The floor"): host_audit runs this before
# its arguments are read, because everything after it needs Windows PowerShell 5.1 (ConvertFrom-Json, [ordered],
# [type]::new) and .NET Framework 4.5 (SslProtocols.Tls12, TcpClient.ConnectAsync). Written for Windows PowerShell
# 2.0 and for Constrained Language Mode: cmdlets, the registry provider, strings and integers only. A host below the
# floor prints one document naming what is missing and ends here; plugins/module_utils/_host_floor.py reads it.
$CrlfixFloorPowerShellMajor = 5
$CrlfixFloorPowerShellMinor = 1
$CrlfixFloorDotNetRelease = 378389
$CrlfixFloorOsBuild = 7601

$CrlfixFloorVersion = $PSVersionTable.PSVersion
$CrlfixFloorPowerShell = '' + $CrlfixFloorVersion.Major + '.' + $CrlfixFloorVersion.Minor
$CrlfixFloorLanguageMode = '' + $ExecutionContext.SessionState.LanguageMode
# The Release value of the .NET Framework 4.x setup key (Microsoft Learn, "How to: Determine which .NET Framework
# versions are installed"): absent where no 4.x is installed.
$CrlfixFloorDotNet = Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full' -Name 'Release' -ErrorAction SilentlyContinue
$CrlfixFloorRelease = $null
if ($null -ne $CrlfixFloorDotNet) { $CrlfixFloorRelease = [int]$CrlfixFloorDotNet.Release }
# The build from the registry, the same in every process ([Environment]::OSVersion depends on the process's manifest).
$CrlfixFloorWindows = Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion' -Name 'CurrentBuildNumber' -ErrorAction SilentlyContinue
$CrlfixFloorBuild = 0
if ($null -ne $CrlfixFloorWindows) { $CrlfixFloorBuild = [int]$CrlfixFloorWindows.CurrentBuildNumber }

$CrlfixFloorMissing = @()
if ($CrlfixFloorVersion.Major -lt $CrlfixFloorPowerShellMajor -or
    ($CrlfixFloorVersion.Major -eq $CrlfixFloorPowerShellMajor -and $CrlfixFloorVersion.Minor -lt $CrlfixFloorPowerShellMinor)) {
    $CrlfixFloorMissing += 'powershell'
}
if ($null -eq $CrlfixFloorRelease -or $CrlfixFloorRelease -lt $CrlfixFloorDotNetRelease) { $CrlfixFloorMissing += 'dotnet' }
if ($CrlfixFloorLanguageMode -ne 'FullLanguage') { $CrlfixFloorMissing += 'language_mode' }
if ($CrlfixFloorBuild -lt $CrlfixFloorOsBuild) { $CrlfixFloorMissing += 'os_build' }

# Every value is digits, a dotted version or a language mode's name: the JSON needs no escaping.
$CrlfixFloorReleaseJson = 'null'
if ($null -ne $CrlfixFloorRelease) { $CrlfixFloorReleaseJson = '' + $CrlfixFloorRelease }
$CrlfixFloorMissingJson = ''
foreach ($CrlfixFloorItem in $CrlfixFloorMissing) {
    if ($CrlfixFloorMissingJson -ne '') { $CrlfixFloorMissingJson += ',' }
    $CrlfixFloorMissingJson += '"' + $CrlfixFloorItem + '"'
}
$CrlfixFloorJson = '{"powershell":"' + $CrlfixFloorPowerShell + '","dotnet_release":' + $CrlfixFloorReleaseJson +
    ',"language_mode":"' + $CrlfixFloorLanguageMode + '","os_build":' + $CrlfixFloorBuild + ',"missing":[' +
    $CrlfixFloorMissingJson + ']}'
if ($CrlfixFloorMissing.Count -gt 0) {
    # The document of a host below the floor: script, schema and floor only. Write-Output reaches stdout in every
    # language mode and PowerShell version; exit 0, because the document says it all.
    Write-Output -InputObject ('{"script":"host_audit","schema":1,"floor":' + $CrlfixFloorJson + '}')
    exit 0
}
