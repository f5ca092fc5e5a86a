# winhttp_apply, schemas 1 and 2 (docs/dev/host-scripts.md): with schema 2 (the operations carry expect_b64) compare
# every operation's view with the value the controller planned from and write nothing on a mismatch; then run the
# operations in order (the netsh of the view: set, reset or import; or the exact bytes back), stop at the first
# failure, read both views.

function Assert-CrlfixApplyOperation {
    # Refuses an operation this script could misread; the texts name the field and the value, as the twin's do.
    param([object]$Operation, [int]$Index)
    $field = "operations[$Index]"
    if ($Operation -isnot [System.Management.Automation.PSCustomObject]) {
        throw "${field}: expected an object, got $(ConvertTo-Json -InputObject $Operation -Compress)"
    }
    $view = $Operation.view
    if (@('native', 'wow6432') -cnotcontains $view -or ($view -eq 'wow6432' -and -not [Environment]::Is64BitOperatingSystem)) {
        throw "${field}.view: unknown view $(ConvertTo-Json -InputObject $view -Compress)"
    }
    if (@('set', 'reset', 'import', 'restore') -cnotcontains $Operation.action) {
        throw "${field}.action: unknown action $(ConvertTo-Json -InputObject $Operation.action -Compress)"
    }
    if ($Operation.action -eq 'set' -and ($Operation.proxy -isnot [string] -or $Operation.proxy -eq '')) {
        throw "${field}.proxy: expected a non-empty string, got $(ConvertTo-Json -InputObject $Operation.proxy -Compress)"
    }
    foreach ($name in 'bypass', 'value_b64', 'expect_b64') {
        $value = $Operation.$name
        if ($null -ne $value -and $value -isnot [string]) {
            throw "${field}.${name}: expected a string or null, got $(ConvertTo-Json -InputObject $value -Compress)"
        }
    }
}

function Restore-CrlfixWinHttpValue {
    # Writes the exact bytes back as REG_BINARY WinHttpSettings in one view (no netsh, so the change counter comes back
    # too), or removes the value when $EncodedValue is null ($EncodedValue is untyped: [string] would turn null into '').
    param([string]$View, [object]$EncodedValue)
    try {
        $key = (Open-CrlfixLocalMachineKey -View $View).CreateSubKey($CrlfixConnectionsKey)
        if ($null -eq $EncodedValue) {
            $key.DeleteValue('WinHttpSettings', $false)
        } else {
            $bytes = [Convert]::FromBase64String($EncodedValue)
            $key.SetValue('WinHttpSettings', $bytes, [Microsoft.Win32.RegistryValueKind]::Binary)
        }
        $key.Close()
        [ordered]@{ rc = 0; output = '' }
    } catch {
        [ordered]@{ rc = 1; output = (Get-CrlfixErrorText -Failure $_) }
    }
}

function Invoke-CrlfixApplyOperation {
    # One operation: `netsh winhttp set|reset|import proxy` with the netsh of the operation's view, or a restore.
    # import takes the connecting user's IE settings (source=ie); its proxy and bypass are only the controller's
    # expectation and never reach the command line.
    param([object]$Operation)
    if ($Operation.action -eq 'restore') {
        $outcome = Restore-CrlfixWinHttpValue -View $Operation.view -EncodedValue $Operation.value_b64
    } else {
        $netshArguments = @('winhttp', $Operation.action, 'proxy')
        if ($Operation.action -eq 'set') {
            $netshArguments += "proxy-server=$($Operation.proxy)"
            if ($Operation.bypass) { $netshArguments += "bypass-list=$($Operation.bypass)" }
        } elseif ($Operation.action -eq 'import') {
            $netshArguments += 'source=ie'
        }
        $netsh = Get-CrlfixSystemProgramPath -FileName 'netsh.exe' -View $Operation.view
        $outcome = Invoke-CrlfixNativeCommand -FilePath $netsh -ArgumentList $netshArguments
    }
    [ordered]@{ view = $Operation.view; action = $Operation.action; rc = $outcome.rc; output = $outcome.output }
}

$operations = @(foreach ($operation in $CrlfixArgs.operations) { $operation })
for ($index = 0; $index -lt $operations.Count; $index++) {
    Assert-CrlfixApplyOperation -Operation $operations[$index] -Index $index
}

# Schema 2: an operation that carries expect_b64 (a string, or null for "no value") asks for the compare. A schema-1
# request carries none and expects nothing: an existing value is no conflict there.
$comparesViews = $false
foreach ($operation in $operations) {
    if ($null -ne $operation.PSObject.Properties['expect_b64']) { $comparesViews = $true }
}
$conflicts = [System.Collections.Generic.List[object]]::new()
if ($comparesViews) {
    # Every expectation against the values as they are before any write (base64 text, compared case-sensitively).
    foreach ($operation in $operations) {
        $found = (Get-CrlfixWinHttpView -View $operation.view).value_b64
        if ($found -cne $operation.expect_b64) {
            $conflicts.Add([ordered]@{ view = $operation.view; expected_b64 = $operation.expect_b64; found_b64 = $found })
        }
    }
}

$results = [System.Collections.Generic.List[object]]::new()
if ($conflicts.Count -eq 0) {
    foreach ($operation in $operations) {
        $result = Invoke-CrlfixApplyOperation -Operation $operation
        $results.Add($result)
        if ($result.rc -ne 0) { break }
    }
}

$content = [ordered]@{ results = $results.ToArray() }
if ($comparesViews) { $content.conflicts = $conflicts.ToArray() }
$state = Get-CrlfixWinHttpState
foreach ($key in $state.Keys) { $content[$key] = $state[$key] }
Write-CrlfixDocument -Name 'winhttp_apply' -Schema 2 -Content $content
Exit-CrlfixScript
