# tls_probe's engine, shared with host_audit (docs/dev/host-scripts.md); why each API: _tls_probe.py.
$CrlfixTls = [Security.Authentication.SslProtocols]::Tls12
# Tls13 (12288) only where Schannel has it (build 20348+).
if ([Environment]::OSVersion.Version.Build -ge 20348) { $CrlfixTls = $CrlfixTls -bor 12288 }
# One peer's samples, one after another. With $stop, a sample whose chain came back revocation-unknown ends the
# peer: the next ones would wait the same chain timeout (CryptoAPI caches no failed retrieval); they are skipped.
$CrlfixProbe = {
    param($h, $port, $sni, $n, $t, $rev, $p, $stop)
    $ErrorActionPreference = 'Stop'
    $unknown = $false
    for ($i = 0; $i -lt $n; $i++) {
        $s = @{ tcp_connect_ms = $null; handshake_ms = $null; protocol = $null; chain_status = @(); policy_errors = $null; error = $null }
        if ($unknown) { $s.skipped = $true; $s; continue }
        # TcpClient() is IPv4-only.
        if ($h -like '*:*') { $c = New-Object Net.Sockets.TcpClient([Net.Sockets.AddressFamily]::InterNetworkV6) } else { $c = New-Object Net.Sockets.TcpClient }
        try {
            $c.ReceiveTimeout = $t; $c.SendTimeout = $t
            $w = [Diagnostics.Stopwatch]::StartNew()
            if (-not $c.ConnectAsync($h, $port).Wait($t)) { throw 'The TCP connection timed out' }
            $s.tcp_connect_ms = $w.ElapsedMilliseconds
            $cb = [Net.Security.RemoteCertificateValidationCallback]{
                param($o, $crt, $ch, $e)
                $s.chain_status = @($ch.ChainStatus | ForEach-Object { $_.Status.ToString() })
                $s.policy_errors = $e.ToString()
                $true
            }
            $ssl = New-Object Net.Security.SslStream($c.GetStream(), $false, $cb)
            $w.Restart()
            $ssl.AuthenticateAsClient($sni, $null, $p, $rev)
            $s.handshake_ms = $w.ElapsedMilliseconds
            $s.protocol = $ssl.SslProtocol.ToString()
        } catch {
            $ex = $_.Exception
            while ($ex.InnerException) { $ex = $ex.InnerException }
            $s.error = $ex.Message.Trim()
        } finally { $c.Close() }
        $unknown = $stop -and ($s.chain_status -contains 'RevocationStatusUnknown' -or $s.chain_status -contains 'OfflineRevocation')
        $s
    }
}
# $Peers: @{ host; port; sni } each. Returns at once; the probes run in a runspace pool (one runspace per peer).
function Start-CrlfixProbes($Peers, [int]$n, [int]$t, [bool]$rev, [bool]$stop) {
    $pool = [RunspaceFactory]::CreateRunspacePool(1, [Math]::Min(32, [Math]::Max(1, @($Peers).Count)))
    $pool.Open()
    $jobs = @(foreach ($x in @($Peers)) {
        $ps = [PowerShell]::Create()
        $ps.RunspacePool = $pool
        [void]$ps.AddScript($CrlfixProbe).AddArgument($x.host).AddArgument($x.port).AddArgument($x.sni).AddArgument($n).AddArgument($t).AddArgument($rev).AddArgument($CrlfixTls).AddArgument($stop)
        @{ x = $x; ps = $ps; h = $ps.BeginInvoke() }
    })
    @{ pool = $pool; jobs = $jobs }
}
# Waits for every peer and returns the tls_probe results.
function Complete-CrlfixProbes($r) {
    $res = @(foreach ($j in $r.jobs) {
        try { $s = @($j.ps.EndInvoke($j.h) | ForEach-Object { $_.BaseObject }) }
        catch { $s = @(@{ chain_status = @(); error = $_.Exception.Message }) }
        @{ host = $j.x.host; port = $j.x.port; sni = $j.x.sni; samples = $s }
    })
    $r.pool.Close()
    , $res
}
