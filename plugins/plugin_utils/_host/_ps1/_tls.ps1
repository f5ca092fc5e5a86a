# tls_probe's engine, shared with host_audit (docs/dev/host-scripts.md, "tls_probe"); why each API: _tls_probe.py.
# One runspace per peer (_pool.ps1); the samples of a peer one after another.

# Start-CrlfixProbes' options in tls_probe's arguments and host_audit's tls part (Get-CrlfixOptions).
$CrlfixProbeOptions = [ordered]@{
    SampleCount = @{ Name = 'samples'; Default = 3 }
    TimeoutMs = @{ Name = 'timeout_ms'; Default = 20000 }
    CheckRevocation = @{ Name = 'check_revocation'; Default = $true }
    StopAfterUnknown = @{ Name = 'stop_after_unknown'; Default = $false }
}

function Get-CrlfixTlsProtocols {
    # What the probes offer. SslProtocols.None asks Schannel for the host's own default protocols (.NET Framework 4.7+;
    # the only way .NET Framework offers TLS 1.3, where the OS has it). A process whose .NET runs with
    # DontEnableSystemDefaultTlsVersions (Windows PowerShell 5.1, unless the registry value SystemDefaultTlsVersions is 1)
    # or an older .NET refuses None. The handshake is tried on a stream in memory, which sends nothing anywhere: it
    # reaches the point of waiting for the server's answer (IOException, end of stream) only where None is usable.
    # Otherwise TLS 1.0, 1.1 and 1.2 are offered (Schannel still leaves out what the host disables); TLS 1.3 is never
    # offered by name, which .NET Framework passes to Schannel in the legacy SCHANNEL_CRED structure that cannot
    # carry it (SCH_CREDENTIALS can; Microsoft Learn, "Obtaining Schannel credentials").
    $named = [System.Security.Authentication.SslProtocols]::Tls -bor [System.Security.Authentication.SslProtocols]::Tls11 -bor
        [System.Security.Authentication.SslProtocols]::Tls12
    $stream = [System.Net.Security.SslStream]::new([System.IO.MemoryStream]::new(), $false)
    try {
        $stream.AuthenticateAsClient('crlfix.invalid', $null, [System.Security.Authentication.SslProtocols]::None, $false)
    } catch {
        $exception = $_.Exception
        while ($null -ne $exception.InnerException) { $exception = $exception.InnerException }
        if ($exception -is [System.IO.IOException]) { return [System.Security.Authentication.SslProtocols]::None }
    } finally {
        $stream.Dispose()
    }
    $named
}

function Get-CrlfixClientCertificate {
    # The certificate the probes present as the client's (mutual TLS, as a Lync front end presents its own on 5061):
    # of LocalMachine\My, one with its private key, valid now and usable for client authentication (the Client
    # Authentication EKU 1.3.6.1.5.5.7.3.2, or no EKU extension, RFC 5280 4.2.1.12); the one valid longest. $null: none.
    # SslStream sends it only when the server asks and, without a selection callback, only when the server's list of
    # acceptable issuers holds an issuer of its chain (identity-evidence-research.md section 5, _SecureChannel.cs).
    $now = [DateTime]::Now
    $usable = @(Get-ChildItem -LiteralPath 'Cert:\LocalMachine\My' | Where-Object -FilterScript {
            $_ -is [System.Security.Cryptography.X509Certificates.X509Certificate2] -and $_.HasPrivateKey -and
            $_.NotBefore -le $now -and $_.NotAfter -gt $now
        } | Where-Object -FilterScript {
            $usages = @(foreach ($extension in $_.Extensions) {
                    if ($extension -is [System.Security.Cryptography.X509Certificates.X509EnhancedKeyUsageExtension]) {
                        $extension
                    }
                })
            $usages.Count -eq 0 -or @(foreach ($oid in $usages[0].EnhancedKeyUsages) { $oid.Value }) -contains '1.3.6.1.5.5.7.3.2'
        } | Sort-Object -Property 'NotAfter' -Descending)
    if ($usable.Count -eq 0) { return $null }
    $usable[0]
}

# One peer's samples, run inside a runspace of the pool: only the language and .NET here. Each sample is added to
# $Samples when it ends (the time box keeps the finished ones). With $StopAfterUnknown, a sample whose chain came back
# revocation-unknown ends the peer: the next ones would wait the same chain timeout (CryptoAPI caches no failed
# retrieval). With a $TimeBox the connect waits at most until the box ends, a sample that would start after it gets
# the box's text, and the samples after a cut one are skipped. With $ClientCertificates (mutual TLS), one handshake
# more without them comes first, into $Live.one_sided: a peer slow only when it gets this host's certificate is slow
# because of the peer's own revocation check (docs/fix-crl.md, "Mutual TLS"). First, so that it is known even when the
# audit's time box cuts the samples after it; a box that cuts it makes it the first sample (this host was slow).
$CrlfixProbeJob = {
    param([string]$HostName, [int]$Port, [string]$ServerName, [int]$SampleCount, [int]$TimeoutMs,
        [bool]$CheckRevocation, [System.Security.Authentication.SslProtocols]$Protocols, [bool]$StopAfterUnknown,
        [hashtable]$TimeBox, [System.Collections.ArrayList]$Samples, [hashtable]$Live,
        [System.Security.Cryptography.X509Certificates.X509CertificateCollection]$ClientCertificates)
    # One handshake: a sample, or the box's text when the time box leaves no time for it.
    $handshake = {
        param([System.Security.Cryptography.X509Certificates.X509CertificateCollection]$Certificates)
        $sample = [ordered]@{
            tcp_connect_ms = $null; handshake_ms = $null; protocol = $null; mutual = $false; chain_status = @()
            policy_errors = $null; error = $null
        }
        $waitMs = $TimeoutMs
        if ($null -ne $TimeBox) {
            $waitMs = [int][Math]::Min($TimeoutMs, [Math]::Max(0, $TimeBox.LimitMs - $TimeBox.Clock.ElapsedMilliseconds))
        }
        if ($waitMs -le 0) {
            $Live.cut = $true
            $TimeBox.Hit = $true
            $sample.error = $TimeBox.Text
            return $sample
        }
        # A dual-mode socket reaches IPv4 and IPv6 peers alike; TcpClient() alone is IPv4-only in .NET Framework.
        if ([System.Net.Sockets.Socket]::OSSupportsIPv6) {
            $client = [System.Net.Sockets.TcpClient]::new([System.Net.Sockets.AddressFamily]::InterNetworkV6)
            $client.Client.DualMode = $true
        } else {
            $client = [System.Net.Sockets.TcpClient]::new([System.Net.Sockets.AddressFamily]::InterNetwork)
        }
        $Live.client = $client
        try {
            $client.ReceiveTimeout = $TimeoutMs
            $client.SendTimeout = $TimeoutMs
            $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
            # TcpClient has no connect timeout of its own: wait on the connect task instead.
            if (-not $client.ConnectAsync($HostName, $Port).Wait($waitMs)) {
                if ($waitMs -lt $TimeoutMs) {
                    $Live.cut = $true
                    $TimeBox.Hit = $true
                    throw $TimeBox.Text
                }
                throw 'The TCP connection timed out'
            }
            $sample.tcp_connect_ms = $stopwatch.ElapsedMilliseconds
            # Records the chain's status flags and accepts: the probe measures, it does not enforce. Called on this
            # thread by the synchronous handshake, where a runspace is available to run it.
            $validation = [System.Net.Security.RemoteCertificateValidationCallback]{
                param($source, $certificate, $chain, $policyErrors)
                $sample.chain_status = @(foreach ($status in $chain.ChainStatus) { $status.Status.ToString() })
                $sample.policy_errors = $policyErrors.ToString()
                $true
            }
            $stream = [System.Net.Security.SslStream]::new($client.GetStream(), $false, $validation)
            $stopwatch.Restart()
            # The client certificates (none: $null, a one-sided handshake): SslStream.AuthenticateAsClient(String,
            # X509CertificateCollection, SslProtocols, Boolean), Microsoft Learn.
            $stream.AuthenticateAsClient($ServerName, $Certificates, $Protocols, $CheckRevocation)
            $sample.handshake_ms = $stopwatch.ElapsedMilliseconds
            $sample.protocol = $stream.SslProtocol.ToString()
            $sample.mutual = $stream.IsMutuallyAuthenticated
        } catch {
            $exception = $_.Exception
            while ($null -ne $exception.InnerException) { $exception = $exception.InnerException }
            $sample.error = $exception.Message.Trim()
        } finally {
            $client.Close()
        }
        $sample
    }
    if ($null -ne $ClientCertificates -and $ClientCertificates.Count -gt 0) {
        $oneSided = & $handshake $null
        if ($null -ne $TimeBox -and $oneSided.error -eq $TimeBox.Text) {
            [void]$Samples.Add($oneSided)
        } else {
            $Live.one_sided = [ordered]@{ handshake_ms = $oneSided.handshake_ms; error = $oneSided.error }
        }
    }
    $stopped = $false
    for ($sampleIndex = $Samples.Count; $sampleIndex -lt $SampleCount; $sampleIndex++) {
        if ($stopped -or $Live.cut) {
            $sample = [ordered]@{
                tcp_connect_ms = $null; handshake_ms = $null; protocol = $null; mutual = $false; chain_status = @()
                policy_errors = $null; error = $null; skipped = $true
            }
            [void]$Samples.Add($sample)
            continue
        }
        $sample = & $handshake $ClientCertificates
        $revocationUnknown = $sample.chain_status -contains 'RevocationStatusUnknown' -or
            $sample.chain_status -contains 'OfflineRevocation'
        $stopped = $StopAfterUnknown -and $revocationUnknown
        [void]$Samples.Add($sample)
    }
}

function Start-CrlfixProbes {
    # Starts every peer's samples in $RunspacePool (one runspace per peer) and returns the probes for
    # Complete-CrlfixProbes. $Peers: @{ host; port; sni } each.
    param([hashtable]$RunspacePool, [object[]]$Peers, [int]$SampleCount, [int]$TimeoutMs, [bool]$CheckRevocation,
        [bool]$StopAfterUnknown, [System.Security.Authentication.SslProtocols]$Protocols, [hashtable]$TimeBox,
        [System.Security.Cryptography.X509Certificates.X509Certificate2]$ClientCertificate)
    # Mutual TLS: the host's own certificate, presented to every peer ($null: one-sided handshakes).
    $clientCertificates = $null
    if ($null -ne $ClientCertificate) {
        $clientCertificates = [System.Security.Cryptography.X509Certificates.X509CertificateCollection]::new()
        [void]$clientCertificates.Add($ClientCertificate)
    }
    $probes = @(foreach ($peer in $Peers) {
            $samples = [System.Collections.ArrayList]::Synchronized([System.Collections.ArrayList]::new())
            $live = [hashtable]::Synchronized(@{ cut = $false; client = $null; one_sided = $null })
            # No timeout of its own: a peer's samples are bounded by their socket timeouts and CryptoAPI's.
            $jobParameters = @{
                RunspacePool = $RunspacePool; ScriptBlock = $CrlfixProbeJob; State = $null; TimeoutMs = $null
                ArgumentList = @($peer.host, $peer.port, $peer.sni, $SampleCount, $TimeoutMs, $CheckRevocation, $Protocols,
                    $StopAfterUnknown, $TimeBox, $samples, $live, $clientCertificates)
            }
            @{ Peer = $peer; Samples = $samples; Live = $live; Job = (Start-CrlfixJob @jobParameters) }
        })
    @{ Probes = $probes; SampleCount = $SampleCount; StopAfterUnknown = $StopAfterUnknown; Protocols = $Protocols }
}

function Test-CrlfixStoppedSample {
    # A sample after which a peer takes no more: cut by the time box, skipped, or (with $StopAfterUnknown) unknown.
    param([System.Collections.IDictionary]$Sample, [bool]$StopAfterUnknown, [string]$TimeBoxText)
    if ($Sample.Contains('skipped') -or $Sample.error -eq $TimeBoxText) { return $true }
    $StopAfterUnknown -and ($Sample.chain_status -contains 'RevocationStatusUnknown' -or
        $Sample.chain_status -contains 'OfflineRevocation')
}

function Complete-CrlfixCutSamples {
    # The samples of a peer abandoned at the time box: the finished ones, then the box's text for the first one that
    # did not finish (unless the peer had already stopped), then skipped ones, $SampleCount in all.
    param([object[]]$Finished, [int]$SampleCount, [bool]$StopAfterUnknown, [string]$TimeBoxText)
    $all = [System.Collections.Generic.List[object]]::new()
    $stopped = $false
    foreach ($sample in $Finished) {
        $all.Add($sample)
        if (Test-CrlfixStoppedSample -Sample $sample -StopAfterUnknown $StopAfterUnknown -TimeBoxText $TimeBoxText) {
            $stopped = $true
        }
    }
    while ($all.Count -lt $SampleCount) {
        $sample = [ordered]@{
            tcp_connect_ms = $null; handshake_ms = $null; protocol = $null; mutual = $false; chain_status = @()
            policy_errors = $null; error = $null
        }
        if ($stopped) {
            $sample.skipped = $true
        } else {
            $sample.error = $TimeBoxText
            $stopped = $true
        }
        $all.Add($sample)
    }
    , $all.ToArray()
}

function Complete-CrlfixProbes {
    # Waits for every peer and returns the tls_probe results, one per peer in order. With a $TimeBox, a peer still
    # running when the box ends is abandoned: its finished samples are kept, the rest completed by
    # Complete-CrlfixCutSamples, and its socket closed, which ends a handshake waiting on the peer at once. A handshake
    # inside CryptoAPI's chain retrieval cannot be interrupted: Exit-CrlfixScript ends it with the process, or under
    # psrp asks its runspace to stop.
    param([hashtable]$Probes, [hashtable]$TimeBox)
    $jobs = @(foreach ($probe in $Probes.Probes) { $probe.Job })
    Wait-CrlfixJobs -Jobs $jobs -Clock ([System.Diagnostics.Stopwatch]::StartNew()) -TimeBox $TimeBox
    $results = @(foreach ($probe in $Probes.Probes) {
            if ($probe.Job.Outcome -eq 'finished') {
                try {
                    Complete-CrlfixJob -Job $probe.Job
                    $samples = $probe.Samples.ToArray()
                } catch {
                    $samples = @([ordered]@{ chain_status = @(); error = (Get-CrlfixErrorText -Failure $_) })
                }
            } else {
                $TimeBox.Hit = $true
                $cutParameters = @{
                    Finished = $probe.Samples.ToArray(); SampleCount = $Probes.SampleCount
                    StopAfterUnknown = $Probes.StopAfterUnknown; TimeBoxText = $TimeBox.Text
                }
                $samples = Complete-CrlfixCutSamples @cutParameters
                try { $probe.Live.client.Close() } catch { $null = $_ }
            }
            [ordered]@{
                host = $probe.Peer.host; port = $probe.Peer.port; sni = $probe.Peer.sni; samples = $samples
                one_sided = $probe.Live.one_sided
            }
        })
    , $results
}

# tls_probe's whole run for its arguments (peers, samples, timeout_ms, check_revocation, mutual), without a time box
# and measuring every sample: what tls_probe and service_restart answer as {offered_protocols, results}. host_audit
# runs the engine itself, inside its time box and beside the other parts.
function Invoke-CrlfixTlsProbes {
    param([Parameter(Mandatory = $true)]$Arguments)
    $peers = @(foreach ($peer in $Arguments.peers) { @{ host = [string]$peer.host; port = [int]$peer.port; sni = [string]$peer.sni } })
    $protocols = Get-CrlfixTlsProtocols
    # Mutual TLS (argument mutual): the host's own certificate as the client's (Get-CrlfixClientCertificate).
    $clientCertificate = $null
    if (Get-CrlfixArgument -Arguments $Arguments -Name 'mutual' -Default $false) { $clientCertificate = Get-CrlfixClientCertificate }
    $runspacePool = $null
    if ($peers.Count -gt 0) { $runspacePool = New-CrlfixRunspacePool -RunspaceCount $peers.Count }
    $probeParameters = Get-CrlfixOptions -Arguments $Arguments -Options $CrlfixProbeOptions
    $probeParameters.RunspacePool = $runspacePool
    $probeParameters.Peers = $peers
    $probeParameters.StopAfterUnknown = $false
    $probeParameters.Protocols = $protocols
    $probeParameters.TimeBox = $null
    $probeParameters.ClientCertificate = $clientCertificate
    $probes = Start-CrlfixProbes @probeParameters
    $results = Complete-CrlfixProbes -Probes $probes -TimeBox $null
    [ordered]@{ offered_protocols = $protocols.ToString(); results = $results }
}
