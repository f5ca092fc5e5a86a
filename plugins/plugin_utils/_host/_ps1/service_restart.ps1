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
Write-CrlfixDocument -Name 'service_restart' -Schema 1 -Content ([ordered]@{
    services = $restarts
    tls = Invoke-CrlfixTlsProbes -Arguments $CrlfixArgs.tls
})
Exit-CrlfixScript
