# crl_fetch, schema 1 (docs/dev/host-scripts.md); the engine is _crl.ps1.
Remove-TypeData System.Array -ErrorAction SilentlyContinue
$a = $CrlfixArgs
$purge = $null
if ($a.purge_cache) { $purge = Invoke-CrlfixPurge }
$f = Start-CrlfixFetch $a.urls ([int]$a.timeout_ms)
Write-CrlfixDocument 'crl_fetch' 1 @{ purge = $purge; results = (Complete-CrlfixFetch $f ([int]$a.max_bytes)) }
