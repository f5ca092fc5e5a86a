# tls_probe, schema 1 (docs/dev/host-scripts.md): TLS handshakes with revocation checking, as Schannel does them; the
# engine is _tls.ps1.
$peers = @(foreach ($peer in $CrlfixArgs.peers) { @{ host = [string]$peer.host; port = [int]$peer.port; sni = [string]$peer.sni } })
$protocols = Get-CrlfixTlsProtocols
$runspacePool = $null
if ($peers.Count -gt 0) { $runspacePool = New-CrlfixRunspacePool -RunspaceCount $peers.Count }
$probeParameters = @{
    RunspacePool = $runspacePool
    Peers = $peers
    SampleCount = Get-CrlfixArgument -Arguments $CrlfixArgs -Name 'samples' -Default 3
    TimeoutMs = Get-CrlfixArgument -Arguments $CrlfixArgs -Name 'timeout_ms' -Default 20000
    CheckRevocation = Get-CrlfixArgument -Arguments $CrlfixArgs -Name 'check_revocation' -Default $true
    StopAfterUnknown = $false
    Protocols = $protocols
    TimeBox = $null
}
$probes = Start-CrlfixProbes @probeParameters
$results = Complete-CrlfixProbes -Probes $probes -TimeBox $null
Write-CrlfixDocument -Name 'tls_probe' -Schema 1 -Content ([ordered]@{ offered_protocols = $protocols.ToString(); results = $results })
Exit-CrlfixScript
