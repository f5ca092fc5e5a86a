# service_restart, schema 1 (docs/dev/host-scripts.md): restart the named services, each waited for within wait_ms,
# wait (at most listen_wait_ms) until the host's own service port listens again, then handshake with it (the engine is
# _tls.ps1), in one command. A service that does not stop or start in time, or does not exist, is reported with .NET's
# message and left as it is: nothing is retried.
# ServiceController.Stop stops the services that depend on this one first (.NET Framework docs, ServiceController.Stop);
# they are started again after it, so the host ends as it was, with new processes.

function Wait-CrlfixListening {
    # Waits, at most $WaitMs, until $HostName:$Port accepts a TCP connection. The Service Control Manager reports a
    # service Running as soon as the service says so, which a service does before it has opened its ports (a Lync
    # front end opens 5061 later), so a handshake right after WaitForStatus('Running') can be refused. Windows has no
    # call that waits for another process's listener: the script connects every 500 ms until one succeeds (a refused
    # connect answers at once). Returns [ordered]@{ host; port; listening; waited_ms; attempts; error } (error: the
    # last connect's text, when the port never listened).
    param([string]$HostName, [int]$Port, [int]$WaitMs)
    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    $result = [ordered]@{ host = $HostName; port = $Port; listening = $false; waited_ms = 0; attempts = 0; error = $null }
    while (-not $result.listening) {
        $result.attempts++
        if ([System.Net.Sockets.Socket]::OSSupportsIPv6) {
            $client = [System.Net.Sockets.TcpClient]::new([System.Net.Sockets.AddressFamily]::InterNetworkV6)
            $client.Client.DualMode = $true
        } else {
            $client = [System.Net.Sockets.TcpClient]::new([System.Net.Sockets.AddressFamily]::InterNetwork)
        }
        try {
            $connectMs = [int][Math]::Max(1, [Math]::Min(5000, $WaitMs - $clock.ElapsedMilliseconds))
            if ($client.ConnectAsync($HostName, $Port).Wait($connectMs)) {
                $result.listening = $true
                $result.error = $null
            } else {
                $result.error = 'The TCP connection timed out'
            }
        } catch {
            $result.error = Get-CrlfixErrorText -Failure $_
        } finally {
            $client.Close()
        }
        if ($result.listening -or $clock.ElapsedMilliseconds + 500 -ge $WaitMs) { break }
        [System.Threading.Thread]::Sleep(500)
    }
    $result.waited_ms = $clock.ElapsedMilliseconds
    $result
}

$waitTime = [TimeSpan]::FromMilliseconds([int]$CrlfixArgs.wait_ms)
$restarts = @(foreach ($name in @($CrlfixArgs.services)) {
    $entry = [ordered]@{ name = [string]$name; restarted = $false; state = $null; error = $null }
    $service = $null
    try {
        $service = Get-Service -Name ([string]$name) -ErrorAction Stop
        # Statuses as strings: PowerShell turns 'Stopped' and 'Running' into ServiceControllerStatus when the method
        # is called. A [System.ServiceProcess.ServiceControllerStatus] literal needs its assembly loaded already, which
        # nothing promises before the first Get-Service.
        $dependents = @($service.DependentServices | Where-Object -FilterScript { $_.Status.ToString() -eq 'Running' })
        $service.Stop()
        $service.WaitForStatus('Stopped', $waitTime)
        $service.Start()
        $service.WaitForStatus('Running', $waitTime)
        foreach ($dependent in $dependents) { $dependent.Start(); $dependent.WaitForStatus('Running', $waitTime) }
        $entry.restarted = $true
    } catch {
        $entry.error = $_.Exception.Message
    }
    if ($null -ne $service) { $service.Refresh(); $entry.state = $service.Status.ToString() }
    $entry
})
# The host's own service (the one peer of tls): the probe waits until it listens again.
$listen = $null
$ownService = @($CrlfixArgs.tls.peers) | Select-Object -First 1
if ($null -ne $ownService) {
    $listenWaitMs = [int](Get-CrlfixArgument -Arguments $CrlfixArgs -Name 'listen_wait_ms' -Default $CrlfixArgs.wait_ms)
    $listen = Wait-CrlfixListening -HostName ([string]$ownService.host) -Port ([int]$ownService.port) -WaitMs $listenWaitMs
}
Write-CrlfixDocument -Name 'service_restart' -Schema 1 -Content ([ordered]@{
    services = $restarts
    listen = $listen
    tls = Invoke-CrlfixTlsProbes -Arguments $CrlfixArgs.tls
})
Exit-CrlfixScript
