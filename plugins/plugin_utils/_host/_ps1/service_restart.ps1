# service_restart, schema 1 (docs/dev/host-scripts.md): restart the named services, each waited for within wait_ms,
# then handshake with the host's own service (the engine is _tls.ps1), in one command. A service that does not stop
# or start in time, or does not exist, is reported with .NET's message and left as it is: nothing is retried.
# ServiceController.Stop stops the services that depend on this one first (.NET Framework docs, ServiceController.Stop);
# they are started again after it, so the host ends as it was, with new processes.
$waitTime = [TimeSpan]::FromMilliseconds([int]$CrlfixArgs.wait_ms)
$running = [System.ServiceProcess.ServiceControllerStatus]::Running
$stopped = [System.ServiceProcess.ServiceControllerStatus]::Stopped
$restarts = @(foreach ($name in @($CrlfixArgs.services)) {
    $entry = [ordered]@{ name = [string]$name; restarted = $false; state = $null; error = $null }
    $service = $null
    try {
        $service = Get-Service -Name ([string]$name) -ErrorAction Stop
        $dependents = @($service.DependentServices | Where-Object { $_.Status -eq $running })
        $service.Stop()
        $service.WaitForStatus($stopped, $waitTime)
        $service.Start()
        $service.WaitForStatus($running, $waitTime)
        foreach ($dependent in $dependents) { $dependent.Start(); $dependent.WaitForStatus($running, $waitTime) }
        $entry.restarted = $true
    } catch {
        $entry.error = $_.Exception.Message
    }
    if ($null -ne $service) { $service.Refresh(); $entry.state = $service.Status.ToString() }
    $entry
})
$tlsArgs = $CrlfixArgs.tls
$peers = @(foreach ($peer in $tlsArgs.peers) { @{ host = [string]$peer.host; port = [int]$peer.port; sni = [string]$peer.sni } })
$protocols = Get-CrlfixTlsProtocols
$clientCertificate = $null
if (Get-CrlfixArgument -Arguments $tlsArgs -Name 'mutual' -Default $false) { $clientCertificate = Get-CrlfixClientCertificate }
$runspacePool = $null
if ($peers.Count -gt 0) { $runspacePool = New-CrlfixRunspacePool -RunspaceCount $peers.Count }
$probeParameters = Get-CrlfixOptions -Arguments $tlsArgs -Options $CrlfixProbeOptions
$probeParameters.RunspacePool = $runspacePool
$probeParameters.Peers = $peers
$probeParameters.StopAfterUnknown = $false
$probeParameters.Protocols = $protocols
$probeParameters.TimeBox = $null
$probeParameters.ClientCertificate = $clientCertificate
$probes = Start-CrlfixProbes @probeParameters
$results = Complete-CrlfixProbes -Probes $probes -TimeBox $null
Write-CrlfixDocument -Name 'service_restart' -Schema 1 -Content ([ordered]@{
    services = $restarts
    tls = [ordered]@{ offered_protocols = $protocols.ToString(); results = $results }
})
Exit-CrlfixScript
