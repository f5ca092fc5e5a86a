# crl_fetch, schema 1 (docs/dev/host-scripts.md): fetch revocation URLs through the machine WinHTTP proxy, all at once;
# the engine is _crl.ps1.
$urls = @(foreach ($url in $CrlfixArgs.urls) { [string]$url })
$purge = $null
if (Get-CrlfixArgument -Arguments $CrlfixArgs -Name 'purge_cache' -Default $false) { $purge = Invoke-CrlfixUrlCachePurge }
$fetchableCount = @(foreach ($url in $urls) { if (Test-CrlfixFetchableUrl -Url $url) { $url } }).Count
$runspacePool = $null
if ($fetchableCount -gt 0) { $runspacePool = New-CrlfixRunspacePool -RunspaceCount $fetchableCount }
$fetchParameters = Get-CrlfixOptions -Arguments $CrlfixArgs -Options $CrlfixFetchOptions
$fetchParameters.RunspacePool = $runspacePool
$fetchParameters.Urls = $urls
$fetch = Start-CrlfixFetch @fetchParameters
$results = Complete-CrlfixFetch -Fetch $fetch -TimeBox $null
Write-CrlfixDocument -Name 'crl_fetch' -Schema 1 -Content ([ordered]@{ purge = $purge; results = $results })
Exit-CrlfixScript
