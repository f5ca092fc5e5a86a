# host_audit's revocation URL extraction (docs/dev/host-scripts.md, "host_audit"): a minimal DER walk over the
# extension values; .NET Framework 4.x has no parsed CDP/AIA classes. Mirror: tests/twin/scripts/host_audit.py. And the
# OCSP requests host_audit sends its responders (mirror: tests/twin/scripts/_ocsp.py).

function Get-CrlfixDerChildren {
    # The elements inside $Data[$Start..$End) as @(tag, value offset, value length); stops at anything malformed
    # (a length form over 3 bytes, or an element running past $End).
    param([byte[]]$Data, [int]$Start, [int]$End)
    $offset = $Start
    while ($offset + 2 -le $End) {
        $tag = $Data[$offset]
        $length = [int]$Data[$offset + 1]
        $valueOffset = $offset + 2
        if ($length -ge 0x80) {
            $lengthBytes = $length - 0x80
            if ($lengthBytes -lt 1 -or $lengthBytes -gt 3 -or $valueOffset + $lengthBytes -gt $End) { return }
            $length = 0
            for ($index = 0; $index -lt $lengthBytes; $index++) { $length = $length * 256 + $Data[$valueOffset + $index] }
            $valueOffset += $lengthBytes
        }
        if ($valueOffset + $length -gt $End) { return }
        # The leading comma keeps each triple one element of the output.
        , @($tag, $valueOffset, $length)
        $offset = $valueOffset + $length
    }
}

function Get-CrlfixDistributionPointUris {
    # The [6] URIs (tag 0x86) inside SEQUENCEs and [0]s: each DistributionPoint's fullName. A cRLIssuer ([2], 0xA2)
    # names no place to fetch from and is skipped.
    param([byte[]]$Data, [int]$Start, [int]$End)
    foreach ($element in @(Get-CrlfixDerChildren -Data $Data -Start $Start -End $End)) {
        $tag, $valueOffset, $length = $element
        if ($tag -eq 0x86) {
            [System.Text.Encoding]::ASCII.GetString($Data, $valueOffset, $length)
        } elseif ($tag -eq 0x30 -or $tag -eq 0xA0) {
            Get-CrlfixDistributionPointUris -Data $Data -Start $valueOffset -End ($valueOffset + $length)
        }
    }
}

function Get-CrlfixAccessDescriptionUris {
    # Authority Information Access: the URI of each AccessDescription whose method is id-ad-ocsp (1.3.6.1.5.5.7.48.1)
    # or id-ad-caIssuers (1.3.6.1.5.5.7.48.2).
    param([byte[]]$Data)
    $methods = '2B-06-01-05-05-07-30-01', '2B-06-01-05-05-07-30-02'
    foreach ($sequence in @(Get-CrlfixDerChildren -Data $Data -Start 0 -End $Data.Length)) {
        $descriptions = @(Get-CrlfixDerChildren -Data $Data -Start $sequence[1] -End ($sequence[1] + $sequence[2]))
        foreach ($description in $descriptions) {
            $parts = @(Get-CrlfixDerChildren -Data $Data -Start $description[1] -End ($description[1] + $description[2]))
            if ($parts.Count -ne 2 -or $parts[0][0] -ne 6 -or $parts[1][0] -ne 0x86) { continue }
            # -contains, not -in: Windows PowerShell 2.0 cannot parse -in, and host_audit's floor check must answer there.
            if ($methods -contains [BitConverter]::ToString($Data, $parts[0][1], $parts[0][2])) {
                [System.Text.Encoding]::ASCII.GetString($Data, $parts[1][1], $parts[1][2])
            }
        }
    }
}

function Get-CrlfixCertificateUris {
    # The CRL Distribution Points (2.5.29.31), Freshest CRL (2.5.29.46) and AIA (1.3.6.1.5.5.7.1.1) URIs of one
    # certificate, any scheme, in that order.
    param([System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate)
    foreach ($oid in '2.5.29.31', '2.5.29.46', '1.3.6.1.5.5.7.1.1') {
        foreach ($extension in $Certificate.Extensions) {
            if ($extension.Oid.Value -ne $oid) { continue }
            $data = [byte[]]$extension.RawData
            if ($oid -eq '1.3.6.1.5.5.7.1.1') {
                Get-CrlfixAccessDescriptionUris -Data $data
            } else {
                Get-CrlfixDistributionPointUris -Data $data -Start 0 -End $data.Length
            }
        }
    }
}

function Get-CrlfixChainUris {
    # The URIs of $Targets and, through issuer links in $Pool (issuer name bytes equal to subject name bytes; no
    # network; at most 6 certificates deep), of their issuers, each URL once in the order found. Self-issued
    # certificates (roots) are skipped: CryptoAPI never checks a root's revocation. A certificate whose walk fails
    # contributes no URLs.
    param([object[]]$Targets, [object[]]$Pool)
    $urls = [System.Collections.Generic.List[string]]::new()
    $seen = [System.Collections.Generic.HashSet[string]]::new()
    $walk = [System.Collections.Generic.List[object]]::new()
    foreach ($certificate in $Targets) { $walk.Add(@{ Certificate = $certificate; Depth = 1 }) }
    for ($index = 0; $index -lt $walk.Count; $index++) {
        $certificate = $walk[$index].Certificate
        $depth = $walk[$index].Depth
        if (-not $seen.Add($certificate.Thumbprint)) { continue }
        $issuer = [Convert]::ToBase64String($certificate.IssuerName.RawData)
        if ($issuer -ceq [Convert]::ToBase64String($certificate.SubjectName.RawData)) { continue }
        try {
            foreach ($url in @(Get-CrlfixCertificateUris -Certificate $certificate)) {
                if (-not $urls.Contains($url)) { $urls.Add($url) }
            }
        } catch {
            $null = $_
        }
        if ($depth -ge 6) { continue }
        foreach ($candidate in $Pool) {
            if ([Convert]::ToBase64String($candidate.SubjectName.RawData) -ceq $issuer) {
                $walk.Add(@{ Certificate = $candidate; Depth = $depth + 1 })
            }
        }
    }
    , $urls.ToArray()
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
    # OF Request ::= SEQUENCE { reqCert CertID } } } with CertID ::= SEQUENCE { hashAlgorithm (SHA-1, which RFC 5019
    # 2.1.1 asks clients to use), issuerNameHash (the hash of the issuer's DER name: the certificate's IssuerName.RawData),
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
