# The host's own evidence (docs/dev/host-scripts.md, "host_audit: evidence"): symptom events counted per (log,
# provider, id) with Get-WinEvent -FilterHashtable, the chain engine's retrieval settings from the policy key and the
# non-policy key, the collection's fix marker, the Group Policy Preferences items that write the WinHTTP value and the
# root auto-update policy. Used by host_audit; every read that fails is data, never a failure.
$CrlfixChainEnginePolicyKey = 'SOFTWARE\Policies\Microsoft\SystemCertificates\ChainEngine\Config'
$CrlfixChainEngineConfigKey = 'SOFTWARE\Microsoft\Cryptography\OID\EncodingType 0\CertDllCreateCertificateChainEngine\Config'
$CrlfixMarkerKey = 'SOFTWARE\crlfix\windows'
# The root auto-update policy (Microsoft Learn, "Configure trusted roots and disallowed certificates"): DisableRootAutoUpdate
# 1 stops Windows from downloading the root certificate list; EnableDisallowedCertAutoUpdate 0 the disallowed list.
$CrlfixAuthRootPolicyKey = 'SOFTWARE\Policies\Microsoft\SystemCertificates\AuthRoot'
$CrlfixAuthRootValues = @('DisableRootAutoUpdate', 'EnableDisallowedCertAutoUpdate')
# The Group Policy history the client keeps in the registry: per client-side extension, per GPO applied, GPOName (its
# GUID) and DisplayName (KB 201453, "Group Policy history stored in registry").
$CrlfixGroupPolicyHistoryKey = 'SOFTWARE\Microsoft\Windows\CurrentVersion\Group Policy\History'
$CrlfixTimeFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'"
$CrlfixHourFormat = "yyyy-MM-dd'T'HH':00:00Z'"

function Format-CrlfixUtc {
    # A time as the document carries it: UTC, invariant culture, whole seconds.
    param([datetime]$Time, [string]$Format = $CrlfixTimeFormat)
    $Time.ToUniversalTime().ToString($Format, [System.Globalization.CultureInfo]::InvariantCulture)
}

function Read-CrlfixRegistryValues {
    # The named values of one HKLM key (native view): @{ present; values = @{ name = value|null } }.
    param([string]$Path, [string[]]$Names)
    $values = [ordered]@{}
    foreach ($name in $Names) { $values[$name] = $null }
    $key = (Open-CrlfixLocalMachineKey -View 'native').OpenSubKey($Path)
    if ($null -eq $key) { return [ordered]@{ present = $false; values = $values } }
    foreach ($name in $Names) {
        $value = $key.GetValue($name)
        if ($value -is [int]) { $values[$name] = [long]$value } elseif ($null -ne $value) { $values[$name] = [string]$value }
    }
    $key.Close()
    [ordered]@{ present = $true; values = $values }
}

function Use-CrlfixFixMarker {
    # Reads the fix marker (REG_SZ FixedAt, UTC ISO 8601) and, with -Write, sets it to $Now: the time of the change,
    # by the host's own clock (the clock its events are stamped with). Returns @{ previous; fixed_at; written }.
    param([datetime]$Now, [bool]$Write)
    $previous = $null
    $key = (Open-CrlfixLocalMachineKey -View 'native').OpenSubKey($CrlfixMarkerKey)
    if ($null -ne $key) {
        $previous = $key.GetValue('FixedAt')
        $key.Close()
    }
    $fixedAt = $previous
    if ($Write) {
        $fixedAt = Format-CrlfixUtc -Time $Now
        $key = (Open-CrlfixLocalMachineKey -View 'native').CreateSubKey($CrlfixMarkerKey)
        $key.SetValue('FixedAt', $fixedAt, [Microsoft.Win32.RegistryValueKind]::String)
        $key.Close()
    }
    [ordered]@{ previous = $previous; fixed_at = $fixedAt; written = $Write }
}

function Get-CrlfixLogState {
    # Whether a log exists and is enabled (Get-WinEvent -ListLog): @{ log; exists; enabled; error }.
    param([string]$LogName)
    $state = [ordered]@{ log = $LogName; exists = $false; enabled = $null; error = $null }
    try {
        $configuration = Get-WinEvent -ListLog $LogName -ErrorAction Stop
        $state.exists = $true
        $state.enabled = [bool]$configuration.IsEnabled
    } catch {
        if ([string]$_.FullyQualifiedErrorId -notlike 'NoMatchingLogsFound*') { $state.error = Get-CrlfixErrorText -Failure $_ }
    }
    $state
}

function Enable-CrlfixEventLog {
    # Enables a log (EventLogConfiguration.IsEnabled + SaveChanges, what `wevtutil sl <log> /e:true` does) and answers
    # @{ log; previous; enabled; error }: previous is its state before, so the record can restore it.
    param([string]$LogName)
    $result = [ordered]@{ log = $LogName; previous = $null; enabled = $null; error = $null }
    try {
        $configuration = Get-WinEvent -ListLog $LogName -ErrorAction Stop
        $result.previous = [bool]$configuration.IsEnabled
        if (-not $configuration.IsEnabled) {
            $configuration.IsEnabled = $true
            $configuration.SaveChanges()
        }
        $result.enabled = $true
    } catch {
        $result.error = Get-CrlfixErrorText -Failure $_
    }
    $result
}

function Test-CrlfixServiceEvent {
    # An SCM event about one of $Names (service names and their display names): its insertion strings name it.
    param([object]$EventRecord, [string[]]$Names)
    foreach ($property in $EventRecord.Properties) {
        if ($Names -contains [string]$property.Value) { return $true }
    }
    $false
}

function Read-CrlfixEventQuery {
    # One query: the newest -MaxEvents events from $Start on. Returns @{ events; status; error; truncated }, where
    # status is ok, no_log (NoMatchingLogsFound), denied (UnauthorizedAccessException) or error; no events is ok.
    param([object]$Query, [datetime]$Start, [int]$MaxEvents)
    $filter = @{ LogName = [string]$Query.log; Id = @($Query.ids | ForEach-Object -Process { [int]$_ }); StartTime = $Start }
    if ($null -ne $Query.provider) { $filter.ProviderName = [string]$Query.provider }
    if ($null -ne $Query.levels) { $filter.Level = @($Query.levels | ForEach-Object -Process { [int]$_ }) }
    $failures = $null
    $events = @(Get-WinEvent -FilterHashtable $filter -MaxEvents $MaxEvents -ErrorAction SilentlyContinue -ErrorVariable failures)
    $result = [ordered]@{ events = $events; status = 'ok'; error = $null; truncated = $events.Count -ge $MaxEvents }
    foreach ($failure in @($failures)) {
        $errorId = [string]$failure.FullyQualifiedErrorId
        if ($errorId -like 'NoMatchingEventsFound*') { continue }
        if ($errorId -like 'NoMatchingLogsFound*') {
            $result.status = 'no_log'
        } elseif ($failure.Exception -is [System.UnauthorizedAccessException]) {
            $result.status = 'denied'
        } else {
            $result.status = 'error'
        }
        $result.error = Get-CrlfixErrorText -Failure $failure
        break
    }
    $result
}

function Add-CrlfixEventCount {
    # Counts one event into its (log, provider, id) group: count/first/last/message in the last $Hours, before and
    # since the fix, and per hour (for the report's chart).
    param([System.Collections.IDictionary]$Groups, [object]$EventRecord, [string]$LogName, [datetime]$WindowStart,
        [object]$FixedAt, [int]$Hours, [int]$MessageChars)
    $time = $EventRecord.TimeCreated.ToUniversalTime()
    $groupKey = '{0}|{1}|{2}' -f $LogName, $EventRecord.ProviderName, $EventRecord.Id
    if (-not $Groups.Contains($groupKey)) {
        $Groups[$groupKey] = [ordered]@{
            log = $LogName; provider = [string]$EventRecord.ProviderName; id = [int]$EventRecord.Id; count = 0
            first = $null; last = $null; message = $null; before = $null; since = $null; hours = [ordered]@{}
            last_time = $null
        }
    }
    $group = $Groups[$groupKey]
    if ($null -ne $FixedAt) {
        if ($null -eq $group.before) { $group.before = 0; $group.since = 0 }
        if ($time -ge $FixedAt) { $group.since += 1 } elseif ($time -ge $FixedAt.AddHours(-$Hours)) { $group.before += 1 }
    }
    $hour = Format-CrlfixUtc -Time $time -Format $CrlfixHourFormat
    if ($group.hours.Contains($hour)) { $group.hours[$hour] += 1 } else { $group.hours[$hour] = 1 }
    if ($time -lt $WindowStart) { return }
    $group.count += 1
    if ($null -eq $group.first -or $time -lt $group.first) { $group.first = $time }
    if ($null -eq $group.last_time -or $time -gt $group.last_time) {
        $group.last_time = $time
        $group.last = $time
        $text = $null
        try { $text = [string]$EventRecord.Message } catch { $text = $null }
        if ([string]::IsNullOrEmpty($text)) { $text = '(no message text: the provider has no message table here)' }
        $text = ($text -replace '\s+', ' ').Trim()
        if ($text.Length -gt $MessageChars) { $text = $text.Substring(0, $MessageChars) }
        $group.message = $text
    }
}

function Get-CrlfixGpoDisplayNames {
    # GPO GUID (upper case, with braces) -> its DisplayName, from every extension's history (KB 201453).
    $names = @{}
    $history = (Open-CrlfixLocalMachineKey -View 'native').OpenSubKey($CrlfixGroupPolicyHistoryKey)
    if ($null -eq $history) { return $names }
    foreach ($extensionName in $history.GetSubKeyNames()) {
        $extension = $history.OpenSubKey($extensionName)
        if ($null -eq $extension) { continue }
        foreach ($order in $extension.GetSubKeyNames()) {
            $applied = $extension.OpenSubKey($order)
            if ($null -eq $applied) { continue }
            $guid = [string]$applied.GetValue('GPOName')
            $display = $applied.GetValue('DisplayName')
            if ($guid -ne '' -and $null -ne $display) { $names[$guid.ToUpperInvariant()] = [string]$display }
            $applied.Close()
        }
        $extension.Close()
    }
    $history.Close()
    $names
}

function Get-CrlfixGppWinHttpItems {
    # The Group Policy Preferences Registry items that write WinHttpSettings under ...\Internet Settings\Connections (any
    # view), read from the copy of each GPO's Registry.xml the client keeps in its Group Policy history:
    # %ALLUSERSPROFILE%\Microsoft\Group Policy\History\{GPO GUID}\Machine\Preferences\Registry\Registry.xml ([MS-GPPREF]
    # 2.2.1 names the file Preferences\Registry\Registry.xml in the GPO; that the history keeps it under this folder is
    # *unverified*, docs/dev/real-windows.md). Each <Registry> item's <Properties> carries action (C, R, U, D), hive,
    # key, name, type and value ([MS-GPPREF] 2.2.1.4, 4.2.22); an item with disabled="1" is not applied and is left out.
    # Returns @{ items; error }: a read that fails is the error, never a failed audit.
    $result = [ordered]@{ items = @(); error = $null }
    try {
        $root = [System.IO.Path]::Combine([Environment]::GetEnvironmentVariable('ALLUSERSPROFILE'), 'Microsoft', 'Group Policy', 'History')
        if (-not [System.IO.Directory]::Exists($root)) { return $result }
        $displayNames = Get-CrlfixGpoDisplayNames
        $items = [System.Collections.Generic.List[object]]::new()
        foreach ($folder in [System.IO.Directory]::GetDirectories($root)) {
            $file = [System.IO.Path]::Combine($folder, 'Machine', 'Preferences', 'Registry', 'Registry.xml')
            if (-not [System.IO.File]::Exists($file)) { continue }
            $guid = [System.IO.Path]::GetFileName($folder)
            $xml = New-Object -TypeName System.Xml.XmlDocument
            $xml.XmlResolver = $null  # no external entity is fetched
            $xml.Load($file)
            foreach ($item in $xml.SelectNodes('//Registry')) {
                $properties = $item.SelectSingleNode('Properties')
                if ($null -eq $properties -or $item.GetAttribute('disabled') -eq '1') { continue }
                $key = $properties.GetAttribute('key')
                if ($properties.GetAttribute('name') -ne 'WinHttpSettings' -or $key -notlike '*\Internet Settings\Connections') { continue }
                $gpoName = $null
                if ($displayNames.ContainsKey($guid.ToUpperInvariant())) { $gpoName = $displayNames[$guid.ToUpperInvariant()] }
                $items.Add([ordered]@{
                        gpo = $guid; gpo_name = $gpoName; action = $properties.GetAttribute('action')
                        hive = $properties.GetAttribute('hive'); key = $key; name = $properties.GetAttribute('name')
                        type = $properties.GetAttribute('type'); value = $properties.GetAttribute('value')
                        changed = $item.GetAttribute('changed')
                    })
            }
        }
        $result.items = $items.ToArray()
    } catch {
        $result.items = @()
        $result.error = Get-CrlfixErrorText -Failure $_
    }
    $result
}

function Get-CrlfixEvidence {
    # The evidence part of host_audit. $Spec: hours, max_events, message_chars, services, queries
    # ([{ log; provider; ids; levels; services }]), chain_engine (value names), mark (write the fix marker first),
    # enable_log (a log to enable after the reads: a write, never sent in check mode).
    param([object]$Spec)
    $now = [datetime]::UtcNow
    $hoursWanted = [int](Get-CrlfixArgument -Arguments $Spec -Name 'hours' -Default 24)
    $maxEvents = [int](Get-CrlfixArgument -Arguments $Spec -Name 'max_events' -Default 200)
    $messageChars = [int](Get-CrlfixArgument -Arguments $Spec -Name 'message_chars' -Default 300)
    $marker = Use-CrlfixFixMarker -Now $now -Write ([bool](Get-CrlfixArgument -Arguments $Spec -Name 'mark' -Default $false))
    $fixedAt = $null
    if ($null -ne $marker.fixed_at) {
        $parsed = [datetime]::MinValue
        $styles = [System.Globalization.DateTimeStyles]::AdjustToUniversal -bor [System.Globalization.DateTimeStyles]::AssumeUniversal
        if ([datetime]::TryParseExact([string]$marker.fixed_at, $CrlfixTimeFormat, [System.Globalization.CultureInfo]::InvariantCulture, $styles, [ref]$parsed)) {
            $fixedAt = $parsed
        }
    }
    $windowStart = $now.AddHours(-$hoursWanted)
    $readStart = $windowStart
    if ($null -ne $fixedAt -and $fixedAt.AddHours(-$hoursWanted) -lt $readStart) { $readStart = $fixedAt.AddHours(-$hoursWanted) }
    $serviceNames = [System.Collections.Generic.List[string]]::new()
    foreach ($serviceName in @($Spec.services)) {
        if ([string]::IsNullOrEmpty($serviceName)) { continue }
        $serviceNames.Add([string]$serviceName)
        $service = Get-Service -Name $serviceName -ErrorAction SilentlyContinue
        if ($null -ne $service) { $serviceNames.Add([string]$service.DisplayName) }
    }
    $serviceList = $serviceNames.ToArray()
    $groups = [ordered]@{}
    $queries = [System.Collections.Generic.List[object]]::new()
    $logs = [ordered]@{}
    foreach ($query in @($Spec.queries)) {
        if ($null -eq $query) { continue }
        $logName = [string]$query.log
        if (-not $logs.Contains($logName)) { $logs[$logName] = Get-CrlfixLogState -LogName $logName }
        $read = Read-CrlfixEventQuery -Query $query -Start $readStart -MaxEvents $maxEvents
        # -ListLog is the authority on a missing log: the query's own error for one differs by filter and version.
        if (-not $logs[$logName].exists -and $null -eq $logs[$logName].error) { $read.status = 'no_log' }
        $counted = 0
        $serviceFilter = [bool](Get-CrlfixArgument -Arguments $query -Name 'services' -Default $false)
        foreach ($eventRecord in $read.events) {
            if ($serviceFilter) {
                $aboutService = Test-CrlfixServiceEvent -EventRecord $eventRecord -Names $serviceList
                if (-not $aboutService) { continue }
            }
            Add-CrlfixEventCount -Groups $groups -EventRecord $eventRecord -LogName $logName -WindowStart $windowStart -FixedAt $fixedAt -Hours $hoursWanted -MessageChars $messageChars
            $counted += 1
        }
        $queries.Add([ordered]@{
                log = $logName; provider = $query.provider; status = $read.status; error = $read.error
                read = $read.events.Count; counted = $counted; truncated = $read.truncated
            })
    }
    $events = @(foreach ($group in $groups.Values) {
            if ($null -ne $group.first) { $group.first = Format-CrlfixUtc -Time $group.first }
            if ($null -ne $group.last) { $group.last = Format-CrlfixUtc -Time $group.last }
            $group.Remove('last_time')
            $group
        })
    $enabledLog = $null
    $enableName = Get-CrlfixArgument -Arguments $Spec -Name 'enable_log' -Default $null
    if ($null -ne $enableName) { $enabledLog = Enable-CrlfixEventLog -LogName ([string]$enableName) }
    $chainEngine = $null
    $valueNames = @(foreach ($valueName in @($Spec.chain_engine)) { if ($null -ne $valueName) { [string]$valueName } })
    if ($valueNames.Count -gt 0) {
        $chainEngine = [ordered]@{
            policy = Read-CrlfixRegistryValues -Path $CrlfixChainEnginePolicyKey -Names $valueNames
            config = Read-CrlfixRegistryValues -Path $CrlfixChainEngineConfigKey -Names $valueNames
        }
    }
    $gpp = Get-CrlfixGppWinHttpItems
    $authRoot = Read-CrlfixRegistryValues -Path $CrlfixAuthRootPolicyKey -Names $CrlfixAuthRootValues
    [ordered]@{
        now = Format-CrlfixUtc -Time $now; hours = $hoursWanted; window_start = Format-CrlfixUtc -Time $windowStart
        read_start = Format-CrlfixUtc -Time $readStart; marker = $marker; logs = @($logs.Values)
        queries = $queries.ToArray(); events = $events; chain_engine = $chainEngine; enabled_log = $enabledLog
        gpp_registry = @($gpp.items); gpp_registry_error = $gpp.error; root_autoupdate = $authRoot.values
    }
}
