# crl_fetch, schema 1 (docs/dev/host-scripts.md). WinHttpRequest without SetProxy uses
# HTTPREQUEST_PROXYSETTING_DEFAULT = the netsh winhttp proxy and bypass list (Learn: IWinHttpRequest::SetProxy).
# Open(async) + Send start every URL at once; WaitForResponse(0) polls (Learn: IWinHttpRequest::WaitForResponse).
Remove-TypeData System.Array -ErrorAction SilentlyContinue
$a = $CrlfixArgs
$t = [int]$a.timeout_ms
$max = [int]$a.max_bytes
function Get-Msg($e) {
    $x = $e.Exception
    while ($x.InnerException) { $x = $x.InnerException }
    $x.Message.Trim()
}
$purge = $null
if ($a.purge_cache) {
    $purge = Invoke-CrlfixNative 'certutil.exe' @('-urlcache', '*', 'delete')
}
$sw = [Diagnostics.Stopwatch]::StartNew()
$jobs = @(foreach ($u in @($a.urls)) {
    $j = @{ url = [string]$u; status = $null; elapsed_ms = 0; bytes = $null; body_b64 = $null; truncated = $false; error = $null; r = $null }
    if ($u -match '^https?://') {
        try {
            $r = New-Object -ComObject WinHttp.WinHttpRequest.5.1
            $r.SetTimeouts($t, $t, $t, $t)
            $r.Open('GET', $u, $true)
            $r.Send()
            $j.r = $r
        } catch { $j.error = Get-Msg $_ }
    } else { $j.error = 'Only http and https URLs are fetched' }
    $j
})
do {
    $busy = $false
    foreach ($j in $jobs) {
        if (-not $j.r) { continue }
        $ms = $sw.ElapsedMilliseconds
        try {
            if (-not $j.r.WaitForResponse(0)) {
                if ($ms -lt $t) { $busy = $true; continue }
                $j.r.Abort()
                throw 'The operation timed out'
            }
            $j.status = [int]$j.r.Status
            $b = [byte[]]$j.r.ResponseBody
            if ($null -eq $b) { $b = [byte[]]@() }
            $j.bytes = $b.Length
            if ($b.Length -gt $max) { $c = New-Object byte[] $max; [Array]::Copy($b, $c, $max); $b = $c; $j.truncated = $true }
            $j.body_b64 = [Convert]::ToBase64String([byte[]]$b)
        } catch { $j.error = Get-Msg $_ }
        $j.elapsed_ms = $ms
        $j.r = $null
    }
    if ($busy) { Start-Sleep -Milliseconds 10 }
} while ($busy)
foreach ($j in $jobs) { $j.Remove('r') }
Write-CrlfixDocument 'crl_fetch' 1 @{ purge = $purge; results = $jobs }
