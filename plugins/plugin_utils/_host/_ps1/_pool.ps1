# The runspace pool the CRL downloads and the TLS handshakes run in, and the one wait for them
# (docs/dev/host-scripts.md, "Runspaces and time"). Shared by crl_fetch, tls_probe and host_audit.
# One runspace per download or peer, at most this many; more jobs wait for a free runspace.
$CrlfixMaxRunspaces = 64

function New-CrlfixRunspacePool {
    # Opens a pool of $RunspaceCount runspaces (1 to $CrlfixMaxRunspaces), every one of them created and loaded now,
    # before any measurement starts. InitialSessionState.CreateDefault2() loads only Microsoft.PowerShell.Core, which is
    # all a job script uses (no module is loaded inside a job). The threads are STA: WinHttp.WinHttpRequest is
    # registered as an apartment-threaded COM class, which an MTA thread reaches only through a host apartment COM
    # creates, every call marshalled to that apartment's thread (Microsoft KB 150777, "Descriptions and workings of
    # OLE threading models"); an STA thread creates and calls its own object directly.
    param([int]$RunspaceCount)
    $size = [Math]::Max(1, [Math]::Min($CrlfixMaxRunspaces, $RunspaceCount))
    $sessionState = [System.Management.Automation.Runspaces.InitialSessionState]::CreateDefault2()
    $pool = [System.Management.Automation.Runspaces.RunspaceFactory]::CreateRunspacePool($size, $size, $sessionState, $Host)
    $pool.ApartmentState = [System.Threading.ApartmentState]::STA
    $pool.Open()
    $runspacePool = @{ Pool = $pool; Jobs = [System.Collections.Generic.List[object]]::new() }
    $CrlfixRunspacePools.Add($runspacePool)
    $runspacePool
}

function Start-CrlfixJob {
    # Starts $ScriptBlock with $ArgumentList (positional, in its param order) in a runspace of the pool. Returns the
    # job: @{ PowerShell; Handle (BeginInvoke's IAsyncResult); State (shared with the job); TimeoutMs }.
    # $State.started_ms is set by the job itself when it starts; $TimeoutMs (or null) counts from then.
    param([hashtable]$RunspacePool, [scriptblock]$ScriptBlock, [object[]]$ArgumentList, [hashtable]$State,
        [object]$TimeoutMs)
    $powerShell = [System.Management.Automation.PowerShell]::Create()
    $powerShell.RunspacePool = $RunspacePool.Pool
    [void]$powerShell.AddScript($ScriptBlock.ToString())
    foreach ($argument in $ArgumentList) { [void]$powerShell.AddArgument($argument) }
    $job = @{ PowerShell = $powerShell; Handle = $null; State = $State; TimeoutMs = $TimeoutMs; Outcome = $null }
    $job.Handle = $powerShell.BeginInvoke()
    $RunspacePool.Jobs.Add($job)
    $job
}

function Wait-CrlfixJobs {
    # Waits on the jobs' wait handles (WaitHandle.WaitAny, no polling interval) until each job has an Outcome:
    # 'finished'; 'timed_out' ($Job.TimeoutMs after the job started, on $Clock); or 'cut' (the time box ended first).
    # An abandoned job is not waited for again; Exit-CrlfixScript ends it. A job still queued for a runspace has not
    # started: it is looked at again every 100 ms until it has.
    param([object[]]$Jobs, [System.Diagnostics.Stopwatch]$Clock, [hashtable]$TimeBox)
    $pending = [System.Collections.Generic.List[object]]::new()
    foreach ($job in $Jobs) { $pending.Add($job) }
    while ($pending.Count -gt 0) {
        $now = $Clock.ElapsedMilliseconds
        $boxEnd = [long]::MaxValue
        if ($null -ne $TimeBox) { $boxEnd = $now + $TimeBox.LimitMs - $TimeBox.Clock.ElapsedMilliseconds }
        $nextWake = $boxEnd
        foreach ($job in $pending.ToArray()) {
            $ownEnd = [long]::MaxValue
            if ($null -ne $job.TimeoutMs) {
                if ($null -eq $job.State.started_ms) {
                    $nextWake = [Math]::Min($nextWake, $now + 100)
                } else {
                    $ownEnd = $job.State.started_ms + $job.TimeoutMs
                }
            }
            if ($job.Handle.IsCompleted) {
                $job.Outcome = 'finished'
            } elseif ($now -ge [Math]::Min($ownEnd, $boxEnd)) {
                # Both may have passed since the last look: the one that ended first decides.
                if ($ownEnd -le $boxEnd) { $job.Outcome = 'timed_out' } else { $job.Outcome = 'cut' }
            } else {
                $nextWake = [Math]::Min($nextWake, $ownEnd)
                continue
            }
            [void]$pending.Remove($job)
        }
        if ($pending.Count -eq 0) { break }
        $waitMs = [System.Threading.Timeout]::Infinite
        if ($nextWake -ne [long]::MaxValue) { $waitMs = [int][Math]::Max(1, [Math]::Min([int]::MaxValue, $nextWake - $now)) }
        # WaitAny takes at most 64 handles; the others are seen at the next wake.
        $handles = [System.Threading.WaitHandle[]]@(
            foreach ($job in $pending.GetRange(0, [Math]::Min(63, $pending.Count))) { $job.Handle.AsyncWaitHandle }
        )
        [void][System.Threading.WaitHandle]::WaitAny($handles, $waitMs)
    }
}

function Complete-CrlfixJob {
    # A finished job's end: EndInvoke (re-throws what the job threw outside its own try) and the PowerShell released.
    param([hashtable]$Job)
    try {
        [void]$Job.PowerShell.EndInvoke($Job.Handle)
    } finally {
        $Job.PowerShell.Dispose()
    }
}
