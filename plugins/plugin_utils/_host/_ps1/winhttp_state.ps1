# winhttp_state (schema 1): both WinHTTP registry views; no arguments
Write-CrlfixDocument 'winhttp_state' 1 (Get-CrlfixWinHttpState)
