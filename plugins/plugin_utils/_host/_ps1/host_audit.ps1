# host_audit, schema 1 (docs/dev/host-scripts.md): winhttp_state, cert_inventory, crl_fetch and tls_probe in one
# command. The CRL requests start first, the TLS probes run beside them, so the command costs max(crl, tls).
# A part that fails becomes {"error": "<text>"} and the other parts still run. time_box_ms ends the measurement
# (fetch + probes) that long after it started: open requests are aborted, running probes abandoned.
Remove-TypeData System.Array -ErrorAction SilentlyContinue
$a = $CrlfixArgs
$sw = [Diagnostics.Stopwatch]::StartNew()
function Get-CrlfixPartError($e) { @{ error = (Get-CrlfixMsg $e) } }
$doc = [ordered]@{ winhttp = $null; certificates = $null; crl = $null; tls = $null }
if ($a.winhttp) {
    try { $w = Get-CrlfixWinHttpState; $w['script'] = 'winhttp_state'; $w['schema'] = 1; $doc.winhttp = $w } catch { $doc.winhttp = Get-CrlfixPartError $_ }
}
$urls = @()
if ($null -ne $a.stores) {
    try {
        # As cert_inventory.ps1, keeping the certificate objects for the URL extraction.
        $s = [ordered]@{}; $m = @(); $targets = @(); $pool = @()
        foreach ($n in @($a.stores) + @($a.chain_stores)) {
            $p = 'Cert:\LocalMachine\' + $n
            if ($s.Contains($n) -or $m -contains $n) { continue }
            if (-not (Test-Path -LiteralPath $p)) { $m += $n; continue }
            $certs = @(Get-ChildItem -LiteralPath $p | ? { $_ -is [Security.Cryptography.X509Certificates.X509Certificate2] })
            $s[$n] = @($certs | % { [ordered]@{ der_b64 = [Convert]::ToBase64String($_.RawData); has_private_key = $_.HasPrivateKey } })
            if (@($a.stores) -contains $n) { $targets += $certs }
            $pool += $certs
        }
        $doc.certificates = [ordered]@{ script = 'cert_inventory'; schema = 1; computer_name = $env:COMPUTERNAME; stores = $s; missing_stores = $m; winhttp = $null }
        $urls = @(Get-CrlfixChainUris $targets $pool | ? { $_ -match '^https?://' })
    } catch { $doc.certificates = Get-CrlfixPartError $_ }
}
$f = $null; $r = $null; $purge = $null
if ($null -ne $a.crl -and $a.crl.purge_cache) {
    try { $purge = Invoke-CrlfixPurge } catch { $doc.crl = Get-CrlfixPartError $_ }
}
# The measurement starts here (after the purge, a write): the time box is counted from this point.
$box = $null
if ($null -ne $a.time_box_ms) {
    $tb = [int]$a.time_box_ms
    $box = [hashtable]::Synchronized(@{ sw = [Diagnostics.Stopwatch]::StartNew(); ms = $tb; hit = $false; text = "not finished within the audit's time box of $tb ms" })
}
if ($null -ne $a.crl -and $null -eq $doc.crl) {
    try {
        $c = $a.crl
        $all = New-Object Collections.Generic.List[string]
        foreach ($u in @($c.urls) + $urls + @($c.extra_urls)) { if ($u -and -not $all.Contains([string]$u)) { $all.Add([string]$u) } }
        $f = Start-CrlfixFetch $all.ToArray() ([int]$c.timeout_ms)
    } catch { $doc.crl = Get-CrlfixPartError $_ }
}
if ($null -ne $a.tls -and @($a.tls.peers).Count -gt 0) {
    try {
        $t = $a.tls
        $peers = @(foreach ($x in @($t.peers)) { @{ host = $x.host; port = [int]$x.port; sni = $x.sni } })
        $r = Start-CrlfixProbes $peers ([int]$t.samples) ([int]$t.timeout_ms) ([bool]$t.check_revocation) ([bool]$t.stop_after_unknown) $box
    } catch { $doc.tls = Get-CrlfixPartError $_ }
}
if ($f) {
    try { $doc.crl = [ordered]@{ script = 'crl_fetch'; schema = 1; purge = $purge; results = (Complete-CrlfixFetch $f ([int]$a.crl.max_bytes) $box) } }
    catch { $doc.crl = Get-CrlfixPartError $_ }
}
if ($r) {
    try { $doc.tls = [ordered]@{ script = 'tls_probe'; schema = 1; results = (Complete-CrlfixProbes $r) } }
    catch { $doc.tls = Get-CrlfixPartError $_ }
}
$doc.time_box_ms = $(if ($box) { $box.ms })
$doc.time_box_hit = [bool]($box -and $box.hit)
$doc.elapsed_ms = $sw.ElapsedMilliseconds
Write-CrlfixDocument 'host_audit' 1 $doc
