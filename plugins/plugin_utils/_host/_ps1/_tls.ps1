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

function Get-CrlfixSubjectDnsNames {
    # The dNSName entries of a certificate's Subject Alternative Name extension (2.5.29.17), read from its DER:
    # SEQUENCE OF GeneralName, dNSName = [2] IA5String (RFC 5280 4.2.1.6). X509Extension.Format() would give them as
    # localized text.
    param([System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate)
    $extension = $Certificate.Extensions['2.5.29.17']
    if ($null -eq $extension) { return @() }
    $bytes = $extension.RawData
    $names = [System.Collections.Generic.List[string]]::new()
    $position = 1
    $position += Get-CrlfixDerLengthSize -Bytes $bytes -Position $position
    while ($position -lt $bytes.Length) {
        $tag = $bytes[$position]
        $length = Get-CrlfixDerLength -Bytes $bytes -Position ($position + 1)
        $start = $position + 1 + (Get-CrlfixDerLengthSize -Bytes $bytes -Position ($position + 1))
        if ($tag -eq 0x82) { $names.Add([System.Text.Encoding]::ASCII.GetString($bytes, $start, $length)) }
        $position = $start + $length
    }
    , $names.ToArray()
}

function Get-CrlfixDerLengthSize {
    # How many bytes the DER length at $Position takes: 1 (short form) or 1 + the count in its low bits.
    param([byte[]]$Bytes, [int]$Position)
    if ($Bytes[$Position] -lt 0x80) { return 1 }
    1 + ($Bytes[$Position] -band 0x7F)
}

function Get-CrlfixDerLength {
    # The DER length at $Position (short or long form).
    param([byte[]]$Bytes, [int]$Position)
    if ($Bytes[$Position] -lt 0x80) { return [int]$Bytes[$Position] }
    $length = 0
    for ($index = 1; $index -le ($Bytes[$Position] -band 0x7F); $index++) { $length = $length * 256 + $Bytes[$Position + $index] }
    $length
}

function Get-CrlfixHostFqdn {
    # This host's FQDN: its host name and the DNS domain it is registered in (IPGlobalProperties, Microsoft Learn);
    # the host name alone in a workgroup.
    $properties = [System.Net.NetworkInformation.IPGlobalProperties]::GetIPGlobalProperties()
    if ([string]::IsNullOrEmpty($properties.DomainName)) { return $properties.HostName }
    $properties.HostName + '.' + $properties.DomainName
}

function Get-CrlfixClientCertificate {
    # The certificate the mutual handshakes present as the client's: the one this host's service presents, as a Lync
    # server presents its own certificate to its peers (MTLS). Lync's certificates need only the Server Authentication
    # EKU (Microsoft Learn, "Certificate requirements for internal servers in Lync Server 2010"), and a host often also
    # holds a machine certificate for Client Authentication that the service never presents: choosing by Client
    # Authentication would measure a handshake Lync never makes. Of LocalMachine\My, with its private key and valid
    # now: the one with $Thumbprint (the certificate bound to the service, when the role knows it); else one usable for
    # Server Authentication (the EKU 1.3.6.1.5.5.7.3.1, or no EKU extension: RFC 5280 4.2.1.12) whose SAN names $Fqdn
    # (this host's FQDN when not given), the one valid longest. Schannel does not check the EKU of a client
    # certificate it sends (.NET Framework's SecureChannel.AcquireClientCredentials filters by issuer only).
    # Returns @{ Certificate ($null: none, one-sided handshakes only); Report (the document's client_certificate) }.
    param([string]$Thumbprint, [string]$Fqdn)
    if ([string]::IsNullOrEmpty($Fqdn)) { $Fqdn = Get-CrlfixHostFqdn }
    $report = [ordered]@{ thumbprint = $null; subject = $null; chosen_by = $null; fqdn = $Fqdn; error = $null }
    $now = [DateTime]::Now
    $usable = @(Get-ChildItem -LiteralPath 'Cert:\LocalMachine\My' | Where-Object -FilterScript {
            $_ -is [System.Security.Cryptography.X509Certificates.X509Certificate2] -and $_.HasPrivateKey -and
            $_.NotBefore -le $now -and $_.NotAfter -gt $now
        })
    $chosen = @()
    if (-not [string]::IsNullOrEmpty($Thumbprint)) {
        $report.chosen_by = 'thumbprint'
        $chosen = @(foreach ($certificate in $usable) { if ($certificate.Thumbprint -eq $Thumbprint) { $certificate } })
        if ($chosen.Count -eq 0) {
            $report.error = "no certificate with thumbprint $Thumbprint, a private key and a validity that includes now in LocalMachine\My"
        }
    } else {
        $report.chosen_by = 'fqdn'
        $chosen = @($usable | Where-Object -FilterScript {
                $usages = @(foreach ($extension in $_.Extensions) {
                        if ($extension -is [System.Security.Cryptography.X509Certificates.X509EnhancedKeyUsageExtension]) {
                            $extension
                        }
                    })
                $serverAuthentication = $usages.Count -eq 0 -or
                    @(foreach ($oid in $usages[0].EnhancedKeyUsages) { $oid.Value }) -contains '1.3.6.1.5.5.7.3.1'
                $serverAuthentication -and @(Get-CrlfixSubjectDnsNames -Certificate $_) -contains $Fqdn
            } | Sort-Object -Property 'NotAfter' -Descending)
        if ($chosen.Count -eq 0) {
            $report.error = "no certificate for Server Authentication whose SAN names $Fqdn, with a private key and a validity that includes now, in LocalMachine\My"
        }
    }
    if ($chosen.Count -eq 0) { return @{ Certificate = $null; Report = $report } }
    $report.thumbprint = $chosen[0].Thumbprint
    $report.subject = $chosen[0].Subject
    @{ Certificate = $chosen[0]; Report = $report }
}

# Whether a handshake was full or resumed, read from the TLS records on the wire (.NET Framework does not say: it
# resumes a cached session whenever Schannel can, and IsMutuallyAuthenticated stays true on a resumed session,
# dotnet/runtime#65563). The tap is the stream the SslStream reads and writes through; it parses the handshake messages
# before ChangeCipherSpec, which TLS 1.0-1.2 send in the clear (RFC 5246 7.3 and 7.4): a full handshake has the server's
# Certificate message, an abbreviated one (a resumed session, by session ID or ticket, RFC 5077) goes from ServerHello
# straight to ChangeCipherSpec. In TLS 1.3 only the ServerHello is in the clear: a pre_shared_key extension in it means
# resumed (RFC 8446 4.2.11), and whether a client certificate went out cannot be seen. CertificateRequested and
# CertificateSent are the server's CertificateRequest and the client's non-empty Certificate message (RFC 5246 7.4.4,
# 7.4.6). HelloSent (optional) is set once the ClientHello is on the wire. One C# line per element: Ansible's encoder
# strips each line of the script, so no here-string.
$CrlfixHandshakeTapSource = @(
    'using System;',
    'using System.IO;',
    'using System.Threading;',
    'public sealed class CrlfixTlsDirection {',
    'readonly bool server;',
    'readonly CrlfixTlsDirection peer;',
    'byte[] records = new byte[0];',
    'byte[] messages = new byte[0];',
    'bool finished;',
    'public bool EncryptedHandshake;',
    'public string Kind;',
    'public bool? CertificateRequested;',
    'public bool? CertificateSent;',
    'public CrlfixTlsDirection(bool server, CrlfixTlsDirection peer) { this.server = server; this.peer = peer; }',
    'static byte[] Join(byte[] first, byte[] buffer, int offset, int count) {',
    'byte[] joined = new byte[first.Length + count];',
    'Buffer.BlockCopy(first, 0, joined, 0, first.Length);',
    'Buffer.BlockCopy(buffer, offset, joined, first.Length, count);',
    'return joined;',
    '}',
    'static byte[] Rest(byte[] bytes, int from) {',
    'byte[] rest = new byte[bytes.Length - from];',
    'Buffer.BlockCopy(bytes, from, rest, 0, rest.Length);',
    'return rest;',
    '}',
    'public void Feed(byte[] buffer, int offset, int count) {',
    'if (finished || count <= 0) { return; }',
    'records = Join(records, buffer, offset, count);',
    'while (!finished && records.Length >= 5) {',
    'int length = (records[3] << 8) | records[4];',
    'if (records.Length < 5 + length) { return; }',
    'if (records[0] == 22) { messages = Join(messages, records, 5, length); Messages(); }',
    'else if (records[0] == 20) { ChangeCipherSpec(); }',
    'else { finished = true; }',
    'records = Rest(records, 5 + length);',
    '}',
    '}',
    'void Messages() {',
    'while (!finished && messages.Length >= 4) {',
    'int length = (messages[1] << 16) | (messages[2] << 8) | messages[3];',
    'if (messages.Length < 4 + length) { return; }',
    'Message(messages[0], messages, 4, length);',
    'messages = Rest(messages, 4 + length);',
    '}',
    '}',
    'void Message(int type, byte[] body, int start, int length) {',
    'if (server && type == 2) { ServerHello(body, start, length); }',
    'else if (server && type == 11) { Kind = "full"; }',
    'else if (server && type == 13) { CertificateRequested = true; }',
    'else if (server && type == 14 && CertificateRequested == null) { CertificateRequested = false; }',
    'else if (!server && type == 11 && length >= 3) { CertificateSent = ((body[start] << 16) | (body[start + 1] << 8) | body[start + 2]) > 0; }',
    '}',
    'void ServerHello(byte[] body, int start, int length) {',
    'int end = start + length;',
    'int position = start + 2;',
    'if (position + 4 <= end && body[position] == 0xCF && body[position + 1] == 0x21 && body[position + 2] == 0xAD && body[position + 3] == 0x74) { return; }',
    'position += 32;',
    'if (position >= end) { return; }',
    'position += 1 + body[position] + 2 + 1;',
    'if (position + 2 > end) { return; }',
    'int extensionsEnd = Math.Min(end, position + 2 + ((body[position] << 8) | body[position + 1]));',
    'position += 2;',
    'bool preSharedKey = false;',
    'while (position + 4 <= extensionsEnd) {',
    'int extension = (body[position] << 8) | body[position + 1];',
    'int size = (body[position + 2] << 8) | body[position + 3];',
    'if (extension == 43 && size >= 2 && body[position + 4] == 3 && body[position + 5] == 4) { EncryptedHandshake = true; }',
    'if (extension == 41) { preSharedKey = true; }',
    'position += 4 + size;',
    '}',
    'if (EncryptedHandshake) { Kind = preSharedKey ? "resumed" : "full"; finished = true; }',
    '}',
    'void ChangeCipherSpec() {',
    'finished = true;',
    'if (server) {',
    'if (Kind == null && !EncryptedHandshake) { Kind = "resumed"; }',
    'if (Kind == "resumed" && CertificateRequested == null) { CertificateRequested = false; }',
    '} else if (CertificateSent == null && peer != null && !peer.EncryptedHandshake) { CertificateSent = false; }',
    '}',
    '}',
    'public sealed class CrlfixHandshakeTap : Stream {',
    'readonly Stream inner;',
    'readonly EventWaitHandle helloSent;',
    'readonly CrlfixTlsDirection fromServer;',
    'readonly CrlfixTlsDirection fromClient;',
    'public CrlfixHandshakeTap(Stream inner, EventWaitHandle helloSent) {',
    'this.inner = inner;',
    'this.helloSent = helloSent;',
    'fromServer = new CrlfixTlsDirection(true, null);',
    'fromClient = new CrlfixTlsDirection(false, fromServer);',
    '}',
    'public string Kind { get { return fromServer.Kind; } }',
    'public bool? CertificateRequested { get { return fromServer.CertificateRequested; } }',
    'public bool? CertificateSent { get { return fromClient.CertificateSent; } }',
    'public override int Read(byte[] buffer, int offset, int count) {',
    'int read = inner.Read(buffer, offset, count);',
    'fromServer.Feed(buffer, offset, read);',
    'return read;',
    '}',
    'public override void Write(byte[] buffer, int offset, int count) {',
    'fromClient.Feed(buffer, offset, count);',
    'inner.Write(buffer, offset, count);',
    'if (helloSent != null) { helloSent.Set(); }',
    '}',
    'public override void Flush() { inner.Flush(); }',
    'public override bool CanRead { get { return inner.CanRead; } }',
    'public override bool CanWrite { get { return inner.CanWrite; } }',
    'public override bool CanSeek { get { return false; } }',
    'public override long Length { get { throw new NotSupportedException(); } }',
    'public override long Position { get { throw new NotSupportedException(); } set { throw new NotSupportedException(); } }',
    'public override long Seek(long offset, SeekOrigin origin) { throw new NotSupportedException(); }',
    'public override void SetLength(long value) { throw new NotSupportedException(); }',
    'protected override void Dispose(bool disposing) { if (disposing) { inner.Dispose(); } base.Dispose(disposing); }',
    '}'
) -join "`n"

function Get-CrlfixHandshakeTap {
    # The compiled tap type (Add-Type once per process, before anything is measured): @{ Type; Error }. A host that
    # cannot compile it still probes; its samples then say nothing about resumption (handshake null).
    $type = 'CrlfixHandshakeTap' -as [type]
    if ($null -ne $type) { return @{ Type = $type; Error = $null } }
    try {
        Add-Type -TypeDefinition $CrlfixHandshakeTapSource -Language CSharp
        return @{ Type = ('CrlfixHandshakeTap' -as [type]); Error = $null }
    } catch {
        return @{ Type = $null; Error = Get-CrlfixErrorText -Failure $_ }
    }
}

# One peer's handshakes, run inside a runspace of the pool: only the language and .NET here. With $OneSided it makes
# the one handshake without a client certificate ($Live.one_sided); else the samples, each added to $Samples when it
# ends (the time box keeps the finished ones).
# Why the order (docs/dev/host-scripts.md, "tls_probe"): .NET Framework caches TLS sessions per process and reuses one
# for a new handshake to the same target whenever it can ("The Framework caches SSL sessions as they are created and
# attempts to reuse a cached session for a new request", the SslStream documentation quoted in dotnet/runtime#65563).
# A handshake with a client certificate whose credential is not cached yet starts anonymous (SecureChannel.
# AcquireClientCredentials, microsoft/referencesource _SecureChannel.cs), so it would resume a session an anonymous
# handshake to the same peer left and present no certificate at all. So the first sample, with the certificate, goes
# first; the one-sided handshake starts in its own runspace once that sample's ClientHello is out ($Live.hello), so both
# are full handshakes and the one-sided one is known even when the audit's time box cuts the samples. Samples 2..n find
# the certificate's credential cached and resume when the peer lets them: the peer then checks nothing of ours, so they
# are labelled (handshake: resumed) and only full handshakes judge latency.
# With $StopAfterUnknown, a sample whose chain came back revocation-unknown ends the peer: the next ones would wait the
# same chain timeout (CryptoAPI caches no failed retrieval). With a $TimeBox the connect waits at most until the box
# ends, a sample that would start after it gets the box's text, and the samples after a cut one are skipped.
$CrlfixProbeJob = {
    param([string]$HostName, [int]$Port, [string]$ServerName, [int]$SampleCount, [int]$TimeoutMs,
        [bool]$CheckRevocation, [System.Security.Authentication.SslProtocols]$Protocols, [bool]$StopAfterUnknown,
        [hashtable]$TimeBox, [System.Collections.ArrayList]$Samples, [hashtable]$Live,
        [System.Security.Cryptography.X509Certificates.X509CertificateCollection]$ClientCertificates, [type]$TapType,
        [System.Threading.EventWaitHandle]$Hello, [bool]$OneSided)
    # The time this handshake may still wait: its timeout, or what is left of the time box.
    $waitLeft = {
        if ($null -eq $TimeBox) { return $TimeoutMs }
        [int][Math]::Min($TimeoutMs, [Math]::Max(0, $TimeBox.LimitMs - $TimeBox.Clock.ElapsedMilliseconds))
    }
    # One handshake: a sample, or the box's text when the time box leaves no time for it.
    $handshake = {
        param([System.Security.Cryptography.X509Certificates.X509CertificateCollection]$Certificates,
            [System.Threading.EventWaitHandle]$HelloSent)
        $sample = [ordered]@{
            tcp_connect_ms = $null; handshake_ms = $null; protocol = $null; mutual = $false; chain_status = @()
            policy_errors = $null; error = $null; handshake = $null; certificate_requested = $null
            certificate_sent = $null
        }
        $waitMs = & $waitLeft
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
            # thread by the synchronous handshake, where a runspace is available to run it. $certificate is the peer's
            # end-entity certificate (RemoteCertificateValidationCallback, Microsoft Learn): when its chain's
            # revocation is unknown or revoked, its DER (X509Certificate.GetRawCertData) is kept once per peer, so
            # that the controller can read where its CRLs are published; a healthy chain costs no bytes.
            $validation = [System.Net.Security.RemoteCertificateValidationCallback]{
                param($source, $certificate, $chain, $policyErrors)
                $sample.chain_status = @(foreach ($status in $chain.ChainStatus) { $status.Status.ToString() })
                $sample.policy_errors = $policyErrors.ToString()
                $revocationFlagged = $sample.chain_status -contains 'RevocationStatusUnknown' -or
                    $sample.chain_status -contains 'OfflineRevocation' -or $sample.chain_status -contains 'Revoked'
                if ($revocationFlagged -and $null -ne $certificate -and $null -eq $Live.peer_certificate_b64) {
                    $Live.peer_certificate_b64 = [Convert]::ToBase64String($certificate.GetRawCertData())
                }
                $true
            }
            $tap = $null
            $inner = $client.GetStream()
            if ($null -ne $TapType) {
                $tap = $TapType::new($inner, $HelloSent)
                $inner = $tap
            }
            $stream = [System.Net.Security.SslStream]::new($inner, $false, $validation)
            $stopwatch.Restart()
            # The client certificates (none: $null, a one-sided handshake): SslStream.AuthenticateAsClient(String,
            # X509CertificateCollection, SslProtocols, Boolean), Microsoft Learn.
            $stream.AuthenticateAsClient($ServerName, $Certificates, $Protocols, $CheckRevocation)
            $sample.handshake_ms = $stopwatch.ElapsedMilliseconds
            $sample.protocol = $stream.SslProtocol.ToString()
            $sample.mutual = $stream.IsMutuallyAuthenticated
            if ($null -ne $tap) {
                $sample.handshake = $tap.Kind
                $sample.certificate_requested = $tap.CertificateRequested
                $sample.certificate_sent = $tap.CertificateSent
            }
        } catch {
            $exception = $_.Exception
            while ($null -ne $exception.InnerException) { $exception = $exception.InnerException }
            $sample.error = $exception.Message.Trim()
        } finally {
            $client.Close()
        }
        $sample
    }
    if ($OneSided) {
        # After the first sample's ClientHello is out (or it failed before it), so that neither resumes the other.
        [void]$Hello.WaitOne((& $waitLeft))
        $result = & $handshake $null $null
        $Live.one_sided = [ordered]@{ handshake_ms = $result.handshake_ms; error = $result.error; handshake = $result.handshake }
        return
    }
    $stopped = $false
    try {
        for ($sampleIndex = 0; $sampleIndex -lt $SampleCount; $sampleIndex++) {
            if ($stopped -or $Live.cut) {
                $sample = [ordered]@{
                    tcp_connect_ms = $null; handshake_ms = $null; protocol = $null; mutual = $false; chain_status = @()
                    policy_errors = $null; error = $null; handshake = $null; certificate_requested = $null
                    certificate_sent = $null; skipped = $true
                }
                [void]$Samples.Add($sample)
                continue
            }
            $helloSent = $null
            if ($sampleIndex -eq 0) { $helloSent = $Hello }
            $sample = & $handshake $ClientCertificates $helloSent
            if ($null -ne $Hello) { [void]$Hello.Set() }
            $revocationUnknown = $sample.chain_status -contains 'RevocationStatusUnknown' -or
                $sample.chain_status -contains 'OfflineRevocation'
            $stopped = $StopAfterUnknown -and $revocationUnknown
            [void]$Samples.Add($sample)
        }
    } finally {
        if ($null -ne $Hello) { [void]$Hello.Set() }
    }
}

function Initialize-CrlfixProbes {
    # What the probes need, made before anything is measured: the protocols offered, the client certificate (mutual
    # TLS: argument mutual, optionally client_certificate.thumbprint / .fqdn; Get-CrlfixClientCertificate) and the
    # handshake tap. Returns @{ Protocols; ClientCertificate; ClientReport (null without mutual); Tap; RunspaceCount }.
    param([object]$Arguments, [int]$PeerCount)
    $probes = @{ Protocols = (Get-CrlfixTlsProtocols); ClientCertificate = $null; ClientReport = $null
        Tap = (Get-CrlfixHandshakeTap); RunspaceCount = $PeerCount
    }
    if (Get-CrlfixArgument -Arguments $Arguments -Name 'mutual' -Default $false) {
        $wanted = Get-CrlfixArgument -Arguments $Arguments -Name 'client_certificate' -Default $null
        $choice = Get-CrlfixClientCertificate -Thumbprint ([string](Get-CrlfixArgument -Arguments $wanted -Name 'thumbprint' -Default '')) -Fqdn ([string](Get-CrlfixArgument -Arguments $wanted -Name 'fqdn' -Default ''))
        $probes.ClientCertificate = $choice.Certificate
        $probes.ClientReport = $choice.Report
        # A second runspace per peer for the one-sided handshake, beside the samples.
        if ($null -ne $choice.Certificate) { $probes.RunspaceCount = 2 * $PeerCount }
    }
    $probes
}

function Start-CrlfixProbes {
    # Starts every peer's samples in $RunspacePool (one runspace per peer; with a client certificate one more for the
    # one-sided handshake) and returns the probes for Complete-CrlfixProbes. $Peers: @{ host; port; sni } each.
    param([hashtable]$RunspacePool, [object[]]$Peers, [int]$SampleCount, [int]$TimeoutMs, [bool]$CheckRevocation,
        [bool]$StopAfterUnknown, [hashtable]$Prepared, [hashtable]$TimeBox)
    # Mutual TLS: the host's own certificate, presented to every peer ($null: one-sided handshakes).
    $clientCertificates = $null
    if ($null -ne $Prepared.ClientCertificate) {
        $clientCertificates = [System.Security.Cryptography.X509Certificates.X509CertificateCollection]::new()
        [void]$clientCertificates.Add($Prepared.ClientCertificate)
    }
    $probes = @(foreach ($peer in $Peers) {
            $samples = [System.Collections.ArrayList]::Synchronized([System.Collections.ArrayList]::new())
            $live = [hashtable]::Synchronized(@{ cut = $false; client = $null; peer_certificate_b64 = $null })
            $hello = $null
            if ($null -ne $clientCertificates) { $hello = [System.Threading.ManualResetEvent]::new($false) }
            $arguments = @($peer.host, $peer.port, $peer.sni, $SampleCount, $TimeoutMs, $CheckRevocation,
                $Prepared.Protocols, $StopAfterUnknown, $TimeBox)
            # No timeout of its own: a peer's samples are bounded by their socket timeouts and CryptoAPI's.
            $jobParameters = @{
                RunspacePool = $RunspacePool; ScriptBlock = $CrlfixProbeJob; State = $null; TimeoutMs = $null
                ArgumentList = $arguments + @($samples, $live, $clientCertificates, $Prepared.Tap.Type, $hello, $false)
            }
            $probe = @{ Peer = $peer; Samples = $samples; Live = $live; Job = (Start-CrlfixJob @jobParameters)
                OneSided = $null
            }
            if ($null -ne $hello) {
                $oneSidedLive = [hashtable]::Synchronized(@{ cut = $false; client = $null; one_sided = $null })
                $jobParameters.ArgumentList = $arguments + @([System.Collections.ArrayList]::new(), $oneSidedLive, $null,
                    $Prepared.Tap.Type, $hello, $true)
                $probe.OneSided = @{ Live = $oneSidedLive; Job = (Start-CrlfixJob @jobParameters) }
            }
            $probe
        })
    @{ Probes = $probes; SampleCount = $SampleCount; StopAfterUnknown = $StopAfterUnknown; Prepared = $Prepared }
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
            policy_errors = $null; error = $null; handshake = $null; certificate_requested = $null
            certificate_sent = $null
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

function Complete-CrlfixOneSided {
    # The peer's one_sided entry: null without a client certificate; the box's text when the box cut it.
    param([hashtable]$OneSided, [hashtable]$TimeBox)
    if ($null -eq $OneSided) { return $null }
    if ($OneSided.Job.Outcome -eq 'finished') {
        try {
            Complete-CrlfixJob -Job $OneSided.Job
        } catch {
            return [ordered]@{ handshake_ms = $null; error = (Get-CrlfixErrorText -Failure $_); handshake = $null }
        }
        return $OneSided.Live.one_sided
    }
    $TimeBox.Hit = $true
    try { $OneSided.Live.client.Close() } catch { $null = $_ }
    [ordered]@{ handshake_ms = $null; error = $TimeBox.Text; handshake = $null }
}

function Complete-CrlfixProbes {
    # Waits for every peer and returns the tls_probe results, one per peer in order (peer_certificate_b64: the peer's
    # certificate as a sample's validation kept it, else null). With a $TimeBox, a peer still running when the box
    # ends is abandoned: its finished samples are kept, the rest completed by Complete-CrlfixCutSamples, and its
    # socket closed, which ends a handshake waiting on the peer at once. A handshake inside CryptoAPI's chain
    # retrieval cannot be interrupted: Exit-CrlfixScript ends it with the process, or under psrp asks its runspace
    # to stop.
    param([hashtable]$Probes, [hashtable]$TimeBox)
    $jobs = @(foreach ($probe in $Probes.Probes) {
            $probe.Job
            if ($null -ne $probe.OneSided) { $probe.OneSided.Job }
        })
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
                one_sided = (Complete-CrlfixOneSided -OneSided $probe.OneSided -TimeBox $TimeBox)
                peer_certificate_b64 = $probe.Live.peer_certificate_b64
            }
        })
    , $results
}

function Get-CrlfixProbeDocument {
    # The tls_probe document's keys: offered_protocols, client_certificate (null without mutual), tap_error (why the
    # samples cannot say full or resumed; null when they can), results.
    param([hashtable]$Prepared, [object[]]$Results)
    [ordered]@{
        offered_protocols = $Prepared.Protocols.ToString(); client_certificate = $Prepared.ClientReport
        tap_error = $Prepared.Tap.Error; results = $Results
    }
}

# tls_probe's whole run for its arguments (peers, samples, timeout_ms, check_revocation, mutual, client_certificate),
# without a time box and measuring every sample: what tls_probe and service_restart answer. host_audit runs the engine
# itself, inside its time box and beside the other parts.
function Invoke-CrlfixTlsProbes {
    param([Parameter(Mandatory = $true)]$Arguments)
    $peers = @(foreach ($peer in $Arguments.peers) { @{ host = [string]$peer.host; port = [int]$peer.port; sni = [string]$peer.sni } })
    $prepared = Initialize-CrlfixProbes -Arguments $Arguments -PeerCount $peers.Count
    $runspacePool = $null
    if ($peers.Count -gt 0) { $runspacePool = New-CrlfixRunspacePool -RunspaceCount $prepared.RunspaceCount }
    $probeParameters = Get-CrlfixOptions -Arguments $Arguments -Options $CrlfixProbeOptions
    $probeParameters.RunspacePool = $runspacePool
    $probeParameters.Peers = $peers
    $probeParameters.StopAfterUnknown = $false
    $probeParameters.Prepared = $prepared
    $probeParameters.TimeBox = $null
    $probes = Start-CrlfixProbes @probeParameters
    $results = Complete-CrlfixProbes -Probes $probes -TimeBox $null
    Get-CrlfixProbeDocument -Prepared $prepared -Results $results
}
