# crl_fetch's engine, shared with host_audit (docs/dev/host-scripts.md). WinHttpRequest without SetProxy uses
# HTTPREQUEST_PROXYSETTING_DEFAULT = the netsh winhttp proxy and bypass list (Learn: IWinHttpRequest::SetProxy).
# Open(async) + Send start every URL at once; WaitForResponse(0) polls (Learn: IWinHttpRequest::WaitForResponse).
function Get-CrlfixMsg($e) {
    $x = $e.Exception
    while ($x.InnerException) { $x = $x.InnerException }
    $x.Message.Trim()
}
function Start-CrlfixFetch($Urls, [int]$t) {
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $jobs = @(foreach ($u in @($Urls)) {
        $j = @{ url = [string]$u; status = $null; elapsed_ms = 0; bytes = $null; body_b64 = $null; truncated = $false; error = $null; r = $null }
        if ($u -match '^https?://') {
            try {
                $r = New-Object -ComObject WinHttp.WinHttpRequest.5.1
                $r.SetTimeouts($t, $t, $t, $t)
                $r.Open('GET', $u, $true)
                $r.Send()
                $j.r = $r
            } catch { $j.error = Get-CrlfixMsg $_ }
        } else { $j.error = 'Only http and https URLs are fetched' }
        $j
    })
    @{ sw = $sw; t = $t; jobs = $jobs }
}
# Polls until every request answered or timeout_ms passed since Start-CrlfixFetch; returns the results.
# $box (host_audit's time box, or $null): a request still open when the box ends is aborted (IWinHttpRequest::Abort)
# and gets the box's text; its own timeout, when it ended first, keeps WinHTTP's text.
function Complete-CrlfixFetch($f, [int]$max, $box) {
    do {
        $busy = $false
        foreach ($j in $f.jobs) {
            if (-not $j.r) { continue }
            $ms = $f.sw.ElapsedMilliseconds
            try {
                if (-not $j.r.WaitForResponse(0)) {
                    if ($ms -ge $f.t) { $j.r.Abort(); throw 'The operation timed out' }
                    if ($box -and $box.sw.ElapsedMilliseconds -ge $box.ms) { $j.r.Abort(); $box.hit = $true; throw $box.text }
                    $busy = $true; continue
                }
                $j.status = [int]$j.r.Status
                $b = [byte[]]$j.r.ResponseBody
                if ($null -eq $b) { $b = [byte[]]@() }
                $j.bytes = $b.Length
                if ($b.Length -gt $max) { $c = New-Object byte[] $max; [Array]::Copy($b, $c, $max); $b = $c; $j.truncated = $true }
                $j.body_b64 = [Convert]::ToBase64String([byte[]]$b)
            } catch { $j.error = Get-CrlfixMsg $_ }
            $j.elapsed_ms = $ms
            $j.r = $null
        }
        if ($busy) { Start-Sleep -Milliseconds 10 }
    } while ($busy)
    foreach ($j in $f.jobs) { $j.Remove('r') }
    , $f.jobs
}
function Invoke-CrlfixPurge { Invoke-CrlfixNative 'certutil.exe' @('-urlcache', '*', 'delete') }
