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

# OCSP (RFC 6960): host_audit asks each OCSP responder its chain names about the first certificate that names it, with
# a GET that carries the request, so the responder's own answer (an OCSPResponse the controller parses) says whether it
# works; a bare GET only proves the path. .NET Framework has no OCSP classes: the request is a few DER elements.
function ConvertTo-CrlfixDerElement {
    # One DER element: $Tag, its length (short form below 128, else long form: 0x80 + the count of length bytes), the
    # content (ITU-T X.690 8.1.3).
    param([byte]$Tag, [byte[]]$Content)
    $length = [System.Collections.Generic.List[byte]]::new()
    if ($Content.Length -lt 0x80) {
        $length.Add([byte]$Content.Length)
    } else {
        $remaining = $Content.Length
        while ($remaining -gt 0) {
            $length.Insert(0, [byte]($remaining % 256))
            $remaining = [int][Math]::Floor($remaining / 256)
        }
        $length.Insert(0, [byte](0x80 + $length.Count))
    }
    [byte[]](@($Tag) + $length.ToArray() + $Content)
}

function Get-CrlfixOcspRequestUrl {
    # The GET URL of an OCSP request for $Certificate issued by $Issuer: "<responder>/<url-encoding of the base64 of the
    # DER OCSPRequest>" (RFC 6960 Appendix A.1). OCSPRequest ::= SEQUENCE { tbsRequest SEQUENCE { requestList SEQUENCE
    # OF Request ::= SEQUENCE { reqCert CertID } } } with CertID ::= SEQUENCE { hashAlgorithm (SHA-1, as RFC 5019 2.1.1
    # requires of clients), issuerNameHash (the hash of the issuer's DER name: the certificate's IssuerName.RawData),
    # issuerKeyHash (the hash of the issuer's subjectPublicKey bits: PublicKey.EncodedKeyValue.RawData, the key blob
    # without the BIT STRING's tag, length and unused-bits byte; *unverified* for every key type), serialNumber }
    # (RFC 6960 4.1.1). GetSerialNumber() is little-endian (Microsoft Learn, X509Certificate.GetSerialNumber): reversed,
    # and a 0 put before a first byte with its high bit set, so the INTEGER stays positive.
    param([string]$Responder, [System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate,
        [System.Security.Cryptography.X509Certificates.X509Certificate2]$Issuer)
    $sha1 = [System.Security.Cryptography.SHA1]::Create()
    $nameHash = $sha1.ComputeHash([byte[]]$Certificate.IssuerName.RawData)
    $keyHash = $sha1.ComputeHash([byte[]]$Issuer.PublicKey.EncodedKeyValue.RawData)
    $serial = [byte[]]$Certificate.GetSerialNumber()
    [Array]::Reverse($serial)
    if ($serial[0] -ge 0x80) { $serial = [byte[]](@([byte]0) + $serial) }
    $sha1Algorithm = [byte[]](0x30, 0x09, 0x06, 0x05, 0x2B, 0x0E, 0x03, 0x02, 0x1A, 0x05, 0x00)
    $certId = ConvertTo-CrlfixDerElement -Tag 0x30 -Content ([byte[]]($sha1Algorithm +
            (ConvertTo-CrlfixDerElement -Tag 0x04 -Content $nameHash) + (ConvertTo-CrlfixDerElement -Tag 0x04 -Content $keyHash) +
            (ConvertTo-CrlfixDerElement -Tag 0x02 -Content $serial)))
    $request = $certId
    foreach ($wrapper in 'Request', 'requestList', 'tbsRequest', 'OCSPRequest') {
        $request = ConvertTo-CrlfixDerElement -Tag 0x30 -Content $request
    }
    $Responder.TrimEnd('/') + '/' + [Uri]::EscapeDataString([Convert]::ToBase64String($request))
}

function Get-CrlfixOcspRequests {
    # Responder URL -> the GET URL asking it about the first certificate of the chain walk (Get-CrlfixChainUris' order:
    # $Targets, then their issuers in $Pool) whose AIA names it (id-ad-ocsp, 1.3.6.1.5.5.7.48.1) and whose issuer is in
    # $Pool. A certificate whose extensions do not parse asks nothing.
    param([object[]]$Targets, [object[]]$Pool)
    $requests = @{}
    $walk = [System.Collections.Generic.List[object]]::new()
    $seen = [System.Collections.Generic.HashSet[string]]::new()
    foreach ($certificate in $Targets) { $walk.Add($certificate) }
    for ($index = 0; $index -lt $walk.Count -and $index -lt 64; $index++) {
        $certificate = $walk[$index]
        if (-not $seen.Add($certificate.Thumbprint)) { continue }
        $issuerName = [Convert]::ToBase64String($certificate.IssuerName.RawData)
        if ($issuerName -ceq [Convert]::ToBase64String($certificate.SubjectName.RawData)) { continue }
        $issuers = @(foreach ($candidate in $Pool) { if ([Convert]::ToBase64String($candidate.SubjectName.RawData) -ceq $issuerName) { $candidate } })
        foreach ($issuer in $issuers) { $walk.Add($issuer) }
        if ($issuers.Count -eq 0) { continue }
        try {
            foreach ($extension in $certificate.Extensions) {
                if ($extension.Oid.Value -ne '1.3.6.1.5.5.7.1.1') { continue }
                $data = [byte[]]$extension.RawData
                foreach ($sequence in @(Get-CrlfixDerChildren -Data $data -Start 0 -End $data.Length)) {
                    foreach ($description in @(Get-CrlfixDerChildren -Data $data -Start $sequence[1] -End ($sequence[1] + $sequence[2]))) {
                        $parts = @(Get-CrlfixDerChildren -Data $data -Start $description[1] -End ($description[1] + $description[2]))
                        if ($parts.Count -ne 2 -or $parts[1][0] -ne 0x86) { continue }
                        if ([BitConverter]::ToString($data, $parts[0][1], $parts[0][2]) -ne '2B-06-01-05-05-07-30-01') { continue }
                        $responder = [System.Text.Encoding]::ASCII.GetString($data, $parts[1][1], $parts[1][2])
                        if ($responder -match '^https?://' -and -not $requests.ContainsKey($responder)) {
                            $requests[$responder] = Get-CrlfixOcspRequestUrl -Responder $responder -Certificate $certificate -Issuer $issuers[0]
                        }
                    }
                }
            }
        } catch {
            $null = $_
        }
    }
    $requests
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
# they name (above).
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
