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
# Each runnable identity's chain build starts now, as a scheduled task (_identity_run.ps1); collected after the probes,
# by the runs' own deadline (identities.chain.deadline_ms), not the measurement's time box.
$identitySession = $null
$identityChain = Get-CrlfixArgument -Arguments $identityRequest -Name 'chain' -Default $null
if ($null -ne $identityChain -and $null -ne $document.identities -and $null -ne $document.identities['accounts']) {
    try {
        $document.identities['deadline_ms'] = Get-CrlfixIdentityDeadline -Chain $identityChain
        $identitySession = Start-CrlfixIdentityRuns -Part $document.identities -Chain $identityChain -Clock $clock
    } catch {
        $document.identities['chain_error'] = Get-CrlfixErrorText -Failure $_
    }
}
$identityStartedMs = $clock.ElapsedMilliseconds
# end identities

# The certificates, the URLs of their chains (_der.ps1), and with crl.ocsp_requests an OCSP request for each responder
# they name (_der.ps1).
$extractedUrls = @()
$ocspRequests = @{}
if ($null -ne $CrlfixArgs.stores) {
    try {
        $inventory = Read-CrlfixCertificateStores -StoreNames $CrlfixArgs.stores -ChainStoreNames $CrlfixArgs.chain_stores
        $document.certificates = [ordered]@{
            script = 'cert_inventory'; schema = 2; computer_name = $env:COMPUTERNAME; certificates = $inventory.certificates
            stores = $inventory.stores; missing_stores = $inventory.missing_stores; winhttp = $null
        }
        $chainUrls = Get-CrlfixChainUris -Targets $inventory.targets -Pool $inventory.pool
        $extractedUrls = @(foreach ($url in $chainUrls) { if (Test-CrlfixFetchableUrl -Url $url) { $url } })
        if (Get-CrlfixArgument -Arguments $CrlfixArgs.crl -Name 'ocsp_requests' -Default $false) {
            $ocspRequests = Get-CrlfixOcspRequests -Targets $inventory.targets -Pool $inventory.pool
        }
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

# Everything the measurement needs is made before it starts: the runspaces (one per download and per peer, one more
# per peer for a mutual probe's one-sided handshake, all loaded now), the protocols the probes offer, the client
# certificate and the handshake tap (_tls.ps1, Initialize-CrlfixProbes).
$runspacePool = $null
$prepared = $null
if ($fetchableCount + $peers.Count -gt 0) {
    try {
        $probeRunspaces = 0
        if ($peers.Count -gt 0) {
            $prepared = Initialize-CrlfixProbes -Arguments $tls -PeerCount $peers.Count
            $probeRunspaces = $prepared.RunspaceCount
        }
        $runspacePool = New-CrlfixRunspacePool -RunspaceCount ($fetchableCount + $probeRunspaces)
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
        # A responder is asked with its request; its result says which responder it answers for (location).
        $fetchParameters.Urls = @(foreach ($url in $urls) { if ($ocspRequests.ContainsKey($url)) { $ocspRequests[$url] } else { $url } })
        $fetch = Start-CrlfixFetch @fetchParameters
    } catch {
        $document.crl = Get-CrlfixPartError -Failure $_
    }
}
$probes = $null
$ownProbes = $null
if ($peers.Count -gt 0 -and $null -eq $document.tls) {
    try {
        $probeParameters = Get-CrlfixOptions -Arguments $tls -Options $CrlfixProbeOptions
        $probeParameters.RunspacePool = $runspacePool
        $probeParameters.Prepared = $prepared
        # own_service_last: the last peer is the host's own service. Its handshake is evidence about the running
        # service, not about the proxy path: it runs to its own timeout, outside the time box, beside the others.
        $boxed = $peers
        if ((Get-CrlfixArgument -Arguments $tls -Name 'own_service_last' -Default $false) -and $null -ne $timeBox) {
            $boxed = @($peers | Select-Object -First ($peers.Count - 1))
            $probeParameters.Peers = @($peers[-1])
            $probeParameters.TimeBox = $null
            $ownProbes = Start-CrlfixProbes @probeParameters
        }
        if ($boxed.Count -gt 0) {
            $probeParameters.Peers = $boxed
            $probeParameters.TimeBox = $timeBox
            $probes = Start-CrlfixProbes @probeParameters
        }
    } catch {
        $document.tls = Get-CrlfixPartError -Failure $_
    }
}
if ($null -ne $fetch) {
    try {
        $results = Complete-CrlfixFetch -Fetch $fetch -TimeBox $timeBox
        for ($index = 0; $index -lt $results.Count; $index++) {
            $results[$index]['location'] = $null
            if ($ocspRequests.ContainsKey($urls[$index])) { $results[$index]['location'] = $urls[$index] }
        }
        $document.crl = [ordered]@{ script = 'crl_fetch'; schema = 1; purge = $purge; results = $results }
    } catch {
        $document.crl = Get-CrlfixPartError -Failure $_
    }
}
if ($null -ne $probes -or $null -ne $ownProbes) {
    try {
        $results = @()
        if ($null -ne $probes) { $results += @(Complete-CrlfixProbes -Probes $probes -TimeBox $timeBox) }
        if ($null -ne $ownProbes) { $results += @(Complete-CrlfixProbes -Probes $ownProbes -TimeBox $null) }
        $document.tls = [ordered]@{ script = 'tls_probe'; schema = 1 }
        $probeDocument = Get-CrlfixProbeDocument -Prepared $prepared -Results $results
        foreach ($key in $probeDocument.Keys) { $document.tls[$key] = $probeDocument[$key] }
    } catch {
        $document.tls = Get-CrlfixPartError -Failure $_
    }
}
if ($null -ne $wpadDiscovery) { $document.identities['wpad'] = Complete-CrlfixWpad -Wpad $wpadDiscovery }
# identities: the tasks' results by the runs' own deadline, then nothing is left behind.
if ($null -ne $identitySession) {
    try {
        Complete-CrlfixIdentityRuns -Session $identitySession -Part $document.identities -Clock $clock `
            -DeadlineMs ($identityStartedMs + $document.identities['deadline_ms'])
    } catch {
        $document.identities['chain_error'] = Get-CrlfixErrorText -Failure $_
    }
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
