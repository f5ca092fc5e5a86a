# The collection's floor, checked at first contact (docs/dev/host-scripts.md, "The floor"): host_audit runs this first,
# on the command line before the loader that reads the rest of the script (_powershell.py), because everything after it
# needs Windows PowerShell 5.1 (ConvertFrom-Json, [ordered], [type]::new) and .NET Framework 4.5 (SslProtocols.Tls12,
# TcpClient.ConnectAsync). Written for Windows PowerShell 2.0 and for Constrained Language Mode (about_Language_Modes:
# cmdlets, the registry provider, and only the core types, here [int] and strings). A host below the floor prints one
# document naming what is missing and ends here; plugins/module_utils/_host_floor.py reads it.
$CrlfixFloorPowerShellMajor = 5
$CrlfixFloorPowerShellMinor = 1
$CrlfixFloorDotNetRelease = 378389
$CrlfixFloorOsBuild = 7601

$CrlfixFloorVersion = $PSVersionTable.PSVersion
$CrlfixFloorMode = '' + $ExecutionContext.SessionState.LanguageMode
# The Release value of the .NET Framework 4.x setup key (Microsoft Learn, "How to: Determine which .NET Framework
# versions are installed"): absent where no 4.x is installed.
$CrlfixFloorRelease = $null
$CrlfixFloorValue = Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full' -Name 'Release' -ErrorAction SilentlyContinue
if ($null -ne $CrlfixFloorValue) { $CrlfixFloorRelease = [int]$CrlfixFloorValue.Release }
# The build from the registry, the same in every process ([Environment]::OSVersion depends on the process's manifest).
$CrlfixFloorBuild = 0
$CrlfixFloorValue = Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion' -Name 'CurrentBuildNumber' -ErrorAction SilentlyContinue
if ($null -ne $CrlfixFloorValue) { $CrlfixFloorBuild = [int]$CrlfixFloorValue.CurrentBuildNumber }

# What is missing, each as a JSON string; every value is digits, a dotted version or a language mode's name, so the
# JSON needs no escaping.
$CrlfixFloorMissing = @(
    if (100 * $CrlfixFloorVersion.Major + $CrlfixFloorVersion.Minor -lt 100 * $CrlfixFloorPowerShellMajor + $CrlfixFloorPowerShellMinor) { '"powershell"' }
    if ($null -eq $CrlfixFloorRelease -or $CrlfixFloorRelease -lt $CrlfixFloorDotNetRelease) { '"dotnet"' }
    if ($CrlfixFloorMode -ne 'FullLanguage') { '"language_mode"' }
    if ($CrlfixFloorBuild -lt $CrlfixFloorOsBuild) { '"os_build"' }
)
$CrlfixFloorReleaseJson = 'null'
if ($null -ne $CrlfixFloorRelease) { $CrlfixFloorReleaseJson = '' + $CrlfixFloorRelease }
$CrlfixFloorJson = '{"powershell":"' + $CrlfixFloorVersion.Major + '.' + $CrlfixFloorVersion.Minor + '","dotnet_release":' +
    $CrlfixFloorReleaseJson + ',"language_mode":"' + $CrlfixFloorMode + '","os_build":' + $CrlfixFloorBuild +
    ',"missing":[' + ($CrlfixFloorMissing -join ',') + ']}'
if ($CrlfixFloorMissing.Count -gt 0) {
    # The document of a host below the floor: script, schema and floor only. Write-Output reaches stdout in every
    # language mode and PowerShell version; exit 0, because the document says it all.
    Write-Output -InputObject ('{"script":"host_audit","schema":1,"floor":' + $CrlfixFloorJson + '}')
    exit 0
}
