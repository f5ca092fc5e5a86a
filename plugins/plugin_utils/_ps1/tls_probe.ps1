# tls_probe, schema 1 (docs/dev/host-scripts.md); why each API: plugins/plugin_utils/_tls_probe.py.
Remove-TypeData System.Array -ErrorAction SilentlyContinue
$a = $CrlfixArgs
$p = [Security.Authentication.SslProtocols]::Tls12
# Tls13 (12288) only where Schannel has it (build 20348+).
if ([Environment]::OSVersion.Version.Build -ge 20348) { $p = $p -bor 12288 }
$probe = {
    param($h, $port, $sni, $n, $t, $rev, $p)
    $ErrorActionPreference = 'Stop'
    for ($i = 0; $i -lt $n; $i++) {
        $s = @{ tcp_connect_ms = $null; handshake_ms = $null; protocol = $null; chain_status = @(); policy_errors = $null; error = $null }
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
        $s
    }
}
$peers = @($a.peers)
$pool = [RunspaceFactory]::CreateRunspacePool(1, [Math]::Min(32, [Math]::Max(1, $peers.Count)))
$pool.Open()
$jobs = @(foreach ($x in $peers) {
    $ps = [PowerShell]::Create()
    $ps.RunspacePool = $pool
    [void]$ps.AddScript($probe).AddArgument($x.host).AddArgument([int]$x.port).AddArgument($x.sni).AddArgument([int]$a.samples).AddArgument([int]$a.timeout_ms).AddArgument([bool]$a.check_revocation).AddArgument($p)
    @{ x = $x; ps = $ps; h = $ps.BeginInvoke() }
})
$res = @(foreach ($j in $jobs) {
    try { $s = @($j.ps.EndInvoke($j.h) | ForEach-Object { $_.BaseObject }) }
    catch { $s = @(@{ chain_status = @(); error = $_.Exception.Message }) }
    @{ host = $j.x.host; port = [int]$j.x.port; sni = $j.x.sni; samples = $s }
})
$pool.Close()
Write-CrlfixDocument 'tls_probe' 1 @{ results = $res }
