# winhttp_state, schema 1 (docs/dev/host-scripts.md): both WinHTTP registry views and the OS; no arguments.
Write-CrlfixDocument -Name 'winhttp_state' -Schema 1 -Content (Get-CrlfixWinHttpState)
Exit-CrlfixScript
