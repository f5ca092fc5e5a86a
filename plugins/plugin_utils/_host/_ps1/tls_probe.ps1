# tls_probe, schema 1 (docs/dev/host-scripts.md): TLS handshakes with revocation checking, as Schannel does them; the
# engine is _tls.ps1 (Invoke-CrlfixTlsProbes: every sample measured, no time box; only host_audit stops early).
Write-CrlfixDocument -Name 'tls_probe' -Schema 1 -Content (Invoke-CrlfixTlsProbes -Arguments $CrlfixArgs)
Exit-CrlfixScript
