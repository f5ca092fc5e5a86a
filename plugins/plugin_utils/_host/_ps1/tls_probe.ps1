# tls_probe, schema 1 (docs/dev/host-scripts.md): TLS handshakes with revocation checking, as Schannel does them; the
# engine is _tls.ps1.
$peers = @(foreach ($peer in $CrlfixArgs.peers) { @{ host = [string]$peer.host; port = [int]$peer.port; sni = [string]$peer.sni } })
$protocols = Get-CrlfixTlsProtocols
# Mutual TLS (argument mutual): the host's own certificate as the client's (_tls.ps1, Get-CrlfixClientCertificate).
$clientCertificate = $null
if (Get-CrlfixArgument -Arguments $CrlfixArgs -Name 'mutual' -Default $false) { $clientCertificate = Get-CrlfixClientCertificate }
$runspacePool = $null
if ($peers.Count -gt 0) { $runspacePool = New-CrlfixRunspacePool -RunspaceCount $peers.Count }
$probeParameters = Get-CrlfixOptions -Arguments $CrlfixArgs -Options $CrlfixProbeOptions
$probeParameters.RunspacePool = $runspacePool
$probeParameters.Peers = $peers
$probeParameters.StopAfterUnknown = $false  # tls_probe measures every sample; only host_audit stops early
$probeParameters.Protocols = $protocols
$probeParameters.TimeBox = $null
$probeParameters.ClientCertificate = $clientCertificate
$probes = Start-CrlfixProbes @probeParameters
$results = Complete-CrlfixProbes -Probes $probes -TimeBox $null
Write-CrlfixDocument -Name 'tls_probe' -Schema 1 -Content ([ordered]@{ offered_protocols = $protocols.ToString(); results = $results })
Exit-CrlfixScript
