# tls_probe, schema 1 (docs/dev/host-scripts.md); the engine is _tls.ps1.
Remove-TypeData System.Array -ErrorAction SilentlyContinue
$a = $CrlfixArgs
$peers = @(foreach ($x in @($a.peers)) { @{ host = $x.host; port = [int]$x.port; sni = $x.sni } })
$r = Start-CrlfixProbes $peers ([int]$a.samples) ([int]$a.timeout_ms) ([bool]$a.check_revocation) $false
Write-CrlfixDocument 'tls_probe' 1 @{ results = (Complete-CrlfixProbes $r) }
