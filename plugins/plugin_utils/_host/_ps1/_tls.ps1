# tls_probe's engine, shared with host_audit (docs/dev/host-scripts.md); why each API: _tls_probe.py.
$CrlfixTls = [Security.Authentication.SslProtocols]::Tls12
# Tls13 (12288) only where Schannel has it (build 20348+).
if ([Environment]::OSVersion.Version.Build -ge 20348) { $CrlfixTls = $CrlfixTls -bor 12288 }
# One peer's samples, one after another, each added to $out when it ends (host_audit's time box takes the finished
# ones from there). With $stop, a sample whose chain came back revocation-unknown ends the peer: the next ones would
# wait the same chain timeout (CryptoAPI caches no failed retrieval); they are skipped. With $box (host_audit's time
# box, or $null), the connect waits at most until the box ends, and a sample that would start after it gets the
# box's text; the samples after a cut one are skipped.
$CrlfixProbe = {
    param($h, $port, $sni, $n, $t, $rev, $p, $stop, $box, $out, $live)
    $ErrorActionPreference = 'Stop'
    $unknown = $false
    for ($i = 0; $i -lt $n; $i++) {
        $s = @{ tcp_connect_ms = $null; handshake_ms = $null; protocol = $null; chain_status = @(); policy_errors = $null; error = $null }
        if ($unknown -or $live.cut) { $s.skipped = $true; [void]$out.Add($s); continue }
        $left = $t
        if ($box) { $left = [int][Math]::Min($t, [Math]::Max(0, $box.ms - $box.sw.ElapsedMilliseconds)) }
        if ($left -le 0) { $live.cut = $true; $box.hit = $true; $s.error = $box.text; [void]$out.Add($s); continue }
        # TcpClient() is IPv4-only.
        if ($h -like '*:*') { $c = New-Object Net.Sockets.TcpClient([Net.Sockets.AddressFamily]::InterNetworkV6) } else { $c = New-Object Net.Sockets.TcpClient }
        $live.c = $c
        try {
            $c.ReceiveTimeout = $t; $c.SendTimeout = $t
            $w = [Diagnostics.Stopwatch]::StartNew()
            if (-not $c.ConnectAsync($h, $port).Wait($left)) {
                if ($left -lt $t) { $live.cut = $true; $box.hit = $true; throw $box.text }
                throw 'The TCP connection timed out'
            }
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
        [void]$out.Add($s)
    }
}
# $Peers: @{ host; port; sni } each. Returns at once; the probes run in a runspace pool (one runspace per peer).
function Start-CrlfixProbes($Peers, [int]$n, [int]$t, [bool]$rev, [bool]$stop, $box) {
    $pool = [RunspaceFactory]::CreateRunspacePool(1, [Math]::Min(32, [Math]::Max(1, @($Peers).Count)))
    $pool.Open()
    $jobs = @(foreach ($x in @($Peers)) {
        $ps = [PowerShell]::Create()
        $ps.RunspacePool = $pool
        $out = New-Object Collections.ArrayList
        $out = [Collections.ArrayList]::Synchronized($out)
        $live = [hashtable]::Synchronized(@{})
        [void]$ps.AddScript($CrlfixProbe).AddArgument($x.host).AddArgument($x.port).AddArgument($x.sni).AddArgument($n).AddArgument($t).AddArgument($rev).AddArgument($CrlfixTls).AddArgument($stop).AddArgument($box).AddArgument($out).AddArgument($live)
        @{ x = $x; ps = $ps; h = $ps.BeginInvoke(); out = $out; live = $live }
    })
    @{ pool = $pool; jobs = $jobs; n = $n; stop = $stop; box = $box }
}
# The samples of a peer abandoned at the time box: the finished ones, then the box's text for the first one that did
# not finish (unless the peer had already stopped: cut, skipped or, with $stop, revocation-unknown), then skipped.
function Complete-CrlfixCut($done, [int]$n, [bool]$stop, [string]$text) {
    $all = New-Object Collections.ArrayList
    $stopped = $false
    foreach ($s in @($done)) {
        [void]$all.Add($s)
        if ($s.error -eq $text -or $s.skipped) { $stopped = $true }
        if ($stop -and ($s.chain_status -contains 'RevocationStatusUnknown' -or $s.chain_status -contains 'OfflineRevocation')) { $stopped = $true }
    }
    while ($all.Count -lt $n) {
        $s = @{ tcp_connect_ms = $null; handshake_ms = $null; protocol = $null; chain_status = @(); policy_errors = $null; error = $null }
        if ($stopped) { $s.skipped = $true } else { $s.error = $text; $stopped = $true }
        [void]$all.Add($s)
    }
    , $all.ToArray()
}
# Waits for every peer and returns the tls_probe results. With a time box, a peer still running when the box ends is
# abandoned (its runspace's wait handle is not waited on any longer, as Task.Wait(timeout) would give up): its
# finished samples are kept, the rest completed by Complete-CrlfixCut, and its socket is closed, which ends a
# handshake waiting on the peer at once. A handshake inside CryptoAPI's chain retrieval (not interruptible) runs on
# in its runspace until powershell.exe exits right after the document; the pool is therefore not closed (closing it
# would wait for that pipeline).
function Complete-CrlfixProbes($r) {
    $box = $r.box
    $cut = $false
    $res = @(foreach ($j in $r.jobs) {
        $done = $true
        if ($box) { $done = $j.h.AsyncWaitHandle.WaitOne([int][Math]::Max(0, $box.ms - $box.sw.ElapsedMilliseconds)) }
        if ($done) {
            try { [void]$j.ps.EndInvoke($j.h); $s = @($j.out.ToArray()) }
            catch { $s = @(@{ chain_status = @(); error = $_.Exception.Message }) }
        } else {
            $cut = $true
            $box.hit = $true
            $s = Complete-CrlfixCut $j.out.ToArray() $r.n $r.stop $box.text
            try { $j.live.c.Close() } catch { $null = $_ }
        }
        @{ host = $j.x.host; port = $j.x.port; sni = $j.x.sni; samples = $s }
    })
    if (-not $cut) { $r.pool.Close() }
    , $res
}
