# host_audit, schema 2 (docs/dev/host-scripts.md): winhttp_state, cert_inventory, crl_fetch and tls_probe in one
# command. The CRL downloads and the TLS probes run at the same time, so the command costs max(crl, tls). A part that
# fails becomes {"error": "<text>"} and the other parts still run. time_box_ms ends the measurement (downloads and
# probes) that long after it started: what still runs then is abandoned.
$clock = [System.Diagnostics.Stopwatch]::StartNew()
$document = [ordered]@{ winhttp = $null; certificates = $null; crl = $null; tls = $null }

function Get-CrlfixPartError {
    param([object]$Failure)
    @{ error = (Get-CrlfixErrorText -Failure $Failure) }
}

if (Get-CrlfixArgument -Arguments $CrlfixArgs -Name 'winhttp' -Default $true) {
    try {
        $document.winhttp = Get-CrlfixWinHttpStateDocument
    } catch {
        $document.winhttp = Get-CrlfixPartError -Failure $_
    }
}

# >>> evidence (_evidence.ps1): symptom events, chain-engine settings, the fix marker; before the
# measurement, so a marker written now precedes what the measurement itself may log.
$document.evidence = $null
if ($null -ne $CrlfixArgs.evidence) {
    try {
        $document.evidence = Get-CrlfixEvidence -Spec $CrlfixArgs.evidence
    } catch {
        $document.evidence = Get-CrlfixPartError -Failure $_
    }
}
# <<< evidence
# identities (_identity.ps1): the named services' accounts and each account's WinINet settings; reads only.
$document.identities = $null
$identityRequest = Get-CrlfixArgument -Arguments $CrlfixArgs -Name 'identities' -Default $null
if ($null -ne $identityRequest) {
    try {
        $document.identities = Get-CrlfixIdentitiesPart -Request $identityRequest
    } catch {
        $document.identities = Get-CrlfixPartError -Failure $_
    }
}
# Each runnable identity's chain build starts now, as a scheduled task (_identity_run.ps1); collected after the probes.
$identityRuns = @()
$identityChain = Get-CrlfixArgument -Arguments $identityRequest -Name 'chain' -Default $null
if ($null -ne $identityChain -and $null -ne $document.identities -and $null -ne $document.identities['accounts']) {
    try {
        $document.identities['leftovers_removed'] = Remove-CrlfixIdentityLeftover
        $identityTargets = Get-CrlfixIdentityTargets -StoreNames @($identityChain.stores)
        $identityPurge = [bool](Get-CrlfixArgument -Arguments $identityChain -Name 'purge_cache' -Default $false)
        if (Get-CrlfixArgument -Arguments $identityChain -Name 'resync' -Default $false) {
            $document.identities['resync'] = Invoke-CrlfixChainCacheResync
        }
        $identityRuns = @(foreach ($account in $document.identities['accounts']) {
                if ($identityTargets.Count -gt 0 -and (Test-CrlfixRunnableAccount -Account $account)) {
                    Start-CrlfixIdentityRun -Account $account -Targets $identityTargets -PurgeCache $identityPurge
                }
            })
    } catch {
        $document.identities['chain_error'] = Get-CrlfixErrorText -Failure $_
    }
}
$identityStartedMs = $clock.ElapsedMilliseconds
# end identities

# The certificates, and the URLs of their chains (_der.ps1).
$extractedUrls = @()
if ($null -ne $CrlfixArgs.stores) {
    try {
        $inventory = Read-CrlfixCertificateStores -StoreNames $CrlfixArgs.stores -ChainStoreNames $CrlfixArgs.chain_stores
        $document.certificates = [ordered]@{
            script = 'cert_inventory'; schema = 2; computer_name = $env:COMPUTERNAME; certificates = $inventory.certificates
            stores = $inventory.stores; missing_stores = $inventory.missing_stores; winhttp = $null
        }
        $chainUrls = Get-CrlfixChainUris -Targets $inventory.targets -Pool $inventory.pool
        $extractedUrls = @(foreach ($url in $chainUrls) { if (Test-CrlfixFetchableUrl -Url $url) { $url } })
    } catch {
        $document.certificates = Get-CrlfixPartError -Failure $_
    }
}

# What the measurement will run: crl.urls, the extracted URLs, crl.extra_urls (each once, order kept); the peers.
$crl = $CrlfixArgs.crl
$tls = $CrlfixArgs.tls
$purge = $null
if ($null -ne $crl -and (Get-CrlfixArgument -Arguments $crl -Name 'purge_cache' -Default $false)) {
    try {
        $purge = Invoke-CrlfixUrlCachePurge
    } catch {
        $document.crl = Get-CrlfixPartError -Failure $_
    }
}
$urls = [System.Collections.Generic.List[string]]::new()
if ($null -ne $crl -and $null -eq $document.crl) {
    foreach ($list in @($crl.urls), $extractedUrls, @($crl.extra_urls)) {
        foreach ($url in $list) {
            if (-not [string]::IsNullOrEmpty($url) -and -not $urls.Contains([string]$url)) { $urls.Add([string]$url) }
        }
    }
}
$peers = @()
if ($null -ne $tls) {
    $peers = @(foreach ($peer in $tls.peers) { @{ host = [string]$peer.host; port = [int]$peer.port; sni = [string]$peer.sni } })
}
$fetchableCount = @(foreach ($url in $urls) { if (Test-CrlfixFetchableUrl -Url $url) { $url } }).Count
# identities.wpad (_wpad.ps1): WPAD discovery for the first http revocation URL, beside the measurement, and only when
# an identity's path can reach it.
$wpadDiscovery = $null
$wpadRequest = Get-CrlfixArgument -Arguments $identityRequest -Name 'wpad' -Default $null
if ($null -ne $wpadRequest -and $null -ne $document.identities -and $null -ne $document.identities['accounts']) {
    $document.identities['wpad'] = $null
    try {
        $wpadUrl = @(foreach ($url in $urls) { if ($url -match '^https?://') { $url } }) | Select-Object -First 1
        $wpadDiscovery = Start-CrlfixWpad -Part $document.identities -Request $wpadRequest -Build $CrlfixFloorBuild -Url $wpadUrl
    } catch {
        $document.identities['wpad'] = Get-CrlfixPartError -Failure $_
    }
}
# end identities.wpad

# Everything the measurement needs is made before it starts: the runspaces (one per download and per peer, all
# loaded now) and the protocols the probes offer.
$runspacePool = $null
$protocols = $null
$clientCertificate = $null
if ($fetchableCount + $peers.Count -gt 0) {
    try {
        $runspacePool = New-CrlfixRunspacePool -RunspaceCount ($fetchableCount + $peers.Count)
        if ($peers.Count -gt 0) {
            $protocols = Get-CrlfixTlsProtocols
            # Mutual TLS (argument mutual): the host's own certificate as the client's (_tls.ps1).
            if (Get-CrlfixArgument -Arguments $tls -Name 'mutual' -Default $false) { $clientCertificate = Get-CrlfixClientCertificate }
        }
    } catch {
        if ($null -ne $crl -and $null -eq $document.crl) { $document.crl = Get-CrlfixPartError -Failure $_ }
        if ($peers.Count -gt 0) { $document.tls = Get-CrlfixPartError -Failure $_ }
    }
}

# The measurement starts here (after the purge, a write, and the preparations): the time box counts from this point.
$timeBox = $null
$timeBoxArgument = Get-CrlfixArgument -Arguments $CrlfixArgs -Name 'time_box_ms' -Default $null
if ($null -ne $timeBoxArgument) {
    $timeBoxLimitMs = [int]$timeBoxArgument
    $timeBox = [hashtable]::Synchronized(@{
            Clock = [System.Diagnostics.Stopwatch]::StartNew(); LimitMs = $timeBoxLimitMs; Hit = $false
            Text = "not finished within the audit's time box of $timeBoxLimitMs ms"
        })
}
$fetch = $null
if ($null -ne $crl -and $null -eq $document.crl) {
    try {
        $fetchParameters = Get-CrlfixOptions -Arguments $crl -Options $CrlfixFetchOptions
        $fetchParameters.RunspacePool = $runspacePool
        $fetchParameters.Urls = $urls.ToArray()
        $fetch = Start-CrlfixFetch @fetchParameters
    } catch {
        $document.crl = Get-CrlfixPartError -Failure $_
    }
}
$probes = $null
if ($peers.Count -gt 0 -and $null -eq $document.tls) {
    try {
        $probeParameters = Get-CrlfixOptions -Arguments $tls -Options $CrlfixProbeOptions
        $probeParameters.RunspacePool = $runspacePool
        $probeParameters.Peers = $peers
        $probeParameters.Protocols = $protocols
        $probeParameters.TimeBox = $timeBox
        $probeParameters.ClientCertificate = $clientCertificate
        $probes = Start-CrlfixProbes @probeParameters
    } catch {
        $document.tls = Get-CrlfixPartError -Failure $_
    }
}
if ($null -ne $fetch) {
    try {
        $results = Complete-CrlfixFetch -Fetch $fetch -TimeBox $timeBox
        $document.crl = [ordered]@{ script = 'crl_fetch'; schema = 1; purge = $purge; results = $results }
    } catch {
        $document.crl = Get-CrlfixPartError -Failure $_
    }
}
if ($null -ne $probes) {
    try {
        $results = Complete-CrlfixProbes -Probes $probes -TimeBox $timeBox
        $document.tls = [ordered]@{
            script = 'tls_probe'; schema = 1; offered_protocols = $protocols.ToString(); results = $results
        }
    } catch {
        $document.tls = Get-CrlfixPartError -Failure $_
    }
}
if ($null -ne $wpadDiscovery) { $document.identities['wpad'] = Complete-CrlfixWpad -Wpad $wpadDiscovery }
# identities: the tasks' results, within the time box (or the chain's own timeout), then nothing is left behind.
if ($identityRuns.Count -gt 0) {
    $completeParameters = @{ Runs = $identityRuns; Clock = $clock
        DeadlineMs = $identityStartedMs + [long](Get-CrlfixArgument -Arguments $identityChain -Name 'timeout_ms' -Default 30000)
        LateText = 'not finished within ' + (Get-CrlfixArgument -Arguments $identityChain -Name 'timeout_ms' -Default 30000) + ' ms'
    }
    if ($null -ne $timeBox) {
        $completeParameters.Clock = $timeBox.Clock
        $completeParameters.DeadlineMs = $timeBox.LimitMs
        $completeParameters.LateText = $timeBox.Text
    }
    Complete-CrlfixIdentityRuns @completeParameters
}
# end identities
$document.time_box_ms = $null
if ($null -ne $timeBox) { $document.time_box_ms = $timeBox.LimitMs }
$document.time_box_hit = $null -ne $timeBox -and $timeBox.Hit
# The host's facts at first contact (_host_floor.ps1, which ran before the arguments were read).
$document.floor = ConvertFrom-Json -InputObject $CrlfixFloorJson
$document.elapsed_ms = $clock.ElapsedMilliseconds
Write-CrlfixDocument -Name 'host_audit' -Schema 2 -Content $document
Exit-CrlfixScript
