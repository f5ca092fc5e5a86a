# crl_fetch, schema 1 (docs/dev/host-scripts.md): fetch revocation URLs through the machine WinHTTP proxy, all at once;
# the engine is _crl.ps1.
$urls = @(foreach ($url in $CrlfixArgs.urls) { [string]$url })
$purge = $null
if (Get-CrlfixArgument -Arguments $CrlfixArgs -Name 'purge_cache' -Default $false) { $purge = Invoke-CrlfixUrlCachePurge }
$fetchableCount = @(foreach ($url in $urls) { if (Test-CrlfixFetchableUrl -Url $url) { $url } }).Count
$runspacePool = $null
if ($fetchableCount -gt 0) { $runspacePool = New-CrlfixRunspacePool -RunspaceCount $fetchableCount }
$fetchParameters = @{
    RunspacePool = $runspacePool
    Urls = $urls
    TimeoutMs = Get-CrlfixArgument -Arguments $CrlfixArgs -Name 'timeout_ms' -Default 15000
    MaxBytes = Get-CrlfixArgument -Arguments $CrlfixArgs -Name 'max_bytes' -Default 4194304
    MaxDocumentBytes = Get-CrlfixArgument -Arguments $CrlfixArgs -Name 'max_document_bytes' -Default $CrlfixDefaultDocumentCap
}
$fetch = Start-CrlfixFetch @fetchParameters
$results = Complete-CrlfixFetch -Fetch $fetch -TimeBox $null
Write-CrlfixDocument -Name 'crl_fetch' -Schema 1 -Content ([ordered]@{ purge = $purge; results = $results })
Exit-CrlfixScript
