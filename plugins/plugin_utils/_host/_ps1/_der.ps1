# host_audit's revocation URL extraction (docs/dev/host-scripts.md, "host_audit"): a minimal DER walk over the
# extension values; .NET Framework 4.x has no parsed CDP/AIA classes. Mirror: tests/twin/scripts/host_audit.py.
# The children of the DER element list $D[$S..$E) as @(tag, offset, length); stops at anything malformed.
function Get-CrlfixTlv([byte[]]$D, [int]$S, [int]$E) {
    while ($S + 2 -le $E) {
        $tag = $D[$S]; $n = [int]$D[$S + 1]; $o = $S + 2
        if ($n -ge 0x80) {
            $k = $n - 0x80; $n = 0
            if ($k -lt 1 -or $k -gt 3 -or $o + $k -gt $E) { return }
            for ($i = 0; $i -lt $k; $i++) { $n = $n * 256 + $D[$o + $i] }
            $o += $k
        }
        if ($o + $n -gt $E) { return }
        , @($tag, $o, $n)
        $S = $o + $n
    }
}
# [6] URIs (tag 0x86) in SEQUENCEs and [0] (0xA0): a DistributionPoint's fullName; a cRLIssuer [2] is skipped.
function Get-CrlfixDerUris([byte[]]$D, [int]$S, [int]$E) {
    foreach ($x in @(Get-CrlfixTlv $D $S $E)) {
        if ($x[0] -eq 0x86) { [Text.Encoding]::ASCII.GetString($D, $x[1], $x[2]) }
        elseif ($x[0] -eq 0x30 -or $x[0] -eq 0xA0) { Get-CrlfixDerUris $D $x[1] ($x[1] + $x[2]) }
    }
}
# AIA: the URI of each AccessDescription whose method is id-ad-ocsp (...48.1) or id-ad-caIssuers (...48.2).
function Get-CrlfixAiaUris([byte[]]$D) {
    foreach ($seq in @(Get-CrlfixTlv $D 0 $D.Length)) {
        foreach ($ad in @(Get-CrlfixTlv $D $seq[1] ($seq[1] + $seq[2]))) {
            $c = @(Get-CrlfixTlv $D $ad[1] ($ad[1] + $ad[2]))
            if ($c.Count -ne 2 -or $c[0][0] -ne 6 -or $c[1][0] -ne 0x86) { continue }
            if ([BitConverter]::ToString($D, $c[0][1], $c[0][2]) -in '2B-06-01-05-05-07-30-01', '2B-06-01-05-05-07-30-02') {
                [Text.Encoding]::ASCII.GetString($D, $c[1][1], $c[1][2])
            }
        }
    }
}
# CDP (2.5.29.31), Freshest CRL (2.5.29.46), then AIA (1.3.6.1.5.5.7.1.1) URIs of one certificate, any scheme.
function Get-CrlfixCertUris($Cert) {
    foreach ($oid in '2.5.29.31', '2.5.29.46', '1.3.6.1.5.5.7.1.1') {
        foreach ($x in @($Cert.Extensions | Where-Object { $_.Oid.Value -eq $oid })) {
            $d = [byte[]]$x.RawData
            if ($oid -eq '1.3.6.1.5.5.7.1.1') { Get-CrlfixAiaUris $d } else { Get-CrlfixDerUris $d 0 $d.Length }
        }
    }
}
# The URIs of $Targets and, through issuer links in $Pool (Issuer DN bytes = Subject DN bytes, no network, at
# most 6 certificates deep), of their issuers; self-issued certificates (roots) are skipped as CryptoAPI never
# checks a root's revocation. In order, each URL once.
function Get-CrlfixChainUris($Targets, $Pool) {
    $urls = New-Object Collections.Generic.List[string]
    $seen = @{}
    $walk = @(foreach ($c in @($Targets)) { , @($c, 1) })
    for ($i = 0; $i -lt $walk.Count; $i++) {
        $c, $depth = $walk[$i]
        if ($seen[$c.Thumbprint]) { continue }
        $seen[$c.Thumbprint] = $true
        $issuer = [Convert]::ToBase64String($c.IssuerName.RawData)
        if ($issuer -ceq [Convert]::ToBase64String($c.SubjectName.RawData)) { continue }
        try { foreach ($u in @(Get-CrlfixCertUris $c)) { if (-not $urls.Contains($u)) { $urls.Add($u) } } } catch { }
        if ($depth -ge 6) { continue }
        foreach ($p in @($Pool)) { if ([Convert]::ToBase64String($p.SubjectName.RawData) -ceq $issuer) { $walk += , @($p, ($depth + 1)) } }
    }
    $urls.ToArray()
}
