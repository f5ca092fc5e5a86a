# The certificates of LocalMachine stores (docs/dev/host-scripts.md, "cert_inventory"): the one store loop, shared by
# cert_inventory and host_audit.
# A store name as the controller accepts it (_cert_revocation.py): an empty name would make Cert:\LocalMachine\<name>
# the list of the stores themselves, and a path character would leave the store.
$CrlfixStoreNamePattern = '^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$'

function Read-CrlfixCertificateStores {
    # Each store of $StoreNames, then of $ChainStoreNames, once (store names compare case-insensitively on Windows).
    # Returns @{ certificates (each distinct certificate once, DER in base64); stores (name -> entries @{ cert: its
    # index in certificates; has_private_key }, in order); missing_stores (names of stores that do not exist); targets
    # (the certificates of $StoreNames); pool (the certificates of all the stores read) }. A certificate in several
    # stores (an intermediate imported into My and CA, a root in CA too) travels once (cert_inventory schema 2).
    param([object]$StoreNames, [object]$ChainStoreNames)
    $distinct = [System.Collections.Generic.List[string]]::new()
    $indexOf = [System.Collections.Generic.Dictionary[string, int]]::new([System.StringComparer]::Ordinal)
    $stores = [ordered]@{}
    $missing = [System.Collections.Generic.List[string]]::new()
    $targets = [System.Collections.Generic.List[object]]::new()
    $pool = [System.Collections.Generic.List[object]]::new()
    $seen = [System.Collections.Generic.HashSet[string]]::new([System.StringComparer]::OrdinalIgnoreCase)
    $requested = @(
        foreach ($name in $StoreNames) { @{ Name = $name; Field = 'stores'; IsTarget = $true } }
        foreach ($name in $ChainStoreNames) { @{ Name = $name; Field = 'chain_stores'; IsTarget = $false } }
    )
    foreach ($request in $requested) {
        $name = $request.Name
        if ($name -isnot [string] -or $name -cnotmatch $CrlfixStoreNamePattern) {
            throw ("argument '$($request.Field)': $(ConvertTo-Json -InputObject $name -Compress) is not a certificate " +
                'store name (letters, digits, space, . _ -)')
        }
        if (-not $seen.Add($name)) { continue }
        $path = 'Cert:\LocalMachine\' + $name
        if (-not (Test-Path -LiteralPath $path)) {
            $missing.Add($name)
            continue
        }
        $certificates = @(Get-ChildItem -LiteralPath $path | Where-Object -FilterScript {
                $_ -is [System.Security.Cryptography.X509Certificates.X509Certificate2]
            })
        $stores[$name] = @(foreach ($certificate in $certificates) {
                $der = [Convert]::ToBase64String($certificate.RawData)
                if (-not $indexOf.ContainsKey($der)) {
                    $indexOf[$der] = $distinct.Count
                    $distinct.Add($der)
                }
                [ordered]@{ cert = $indexOf[$der]; has_private_key = $certificate.HasPrivateKey }
            })
        if ($request.IsTarget) { $targets.AddRange($certificates) }
        $pool.AddRange($certificates)
    }
    @{
        certificates = $distinct.ToArray(); stores = $stores; missing_stores = $missing.ToArray()
        targets = $targets.ToArray(); pool = $pool.ToArray()
    }
}
