# Run as other identities (docs/dev/host-scripts.md, "host_audit", identities.chain): one scheduled
# task per identity builds the chain of each target certificate online with revocation over the entire chain, as that
# account (its own chain engine and URL cache, its own proxy view), and writes its result to a folder only that
# account, SYSTEM and Administrators can read. Task and folder are created, run, read and removed inside this one
# command; what an aborted run left under \crlfix\ and %ProgramData%\crlfix is removed first.
$CrlfixTaskPath = '\crlfix\'
$CrlfixRunRoot = [System.IO.Path]::Combine($env:ProgramData, 'crlfix')
# LastTaskResult while a task has not finished: SCHED_S_TASK_RUNNING, SCHED_S_TASK_HAS_NOT_RUN (Task Scheduler
# error and success constants).
$CrlfixTaskNotDone = @(267009, 267011)

# What the task runs (powershell.exe -File): certutil's purge of this account's URL cache when asked, then X509Chain
# as this account (new X509Chain() = HCCE_CURRENT_USER, the caller's engine; referencesource x509chain.cs).
$CrlfixIdentityProbe = {
    param([string]$Folder)
    $ErrorActionPreference = 'Stop'
    $result = [ordered]@{ purge = $null; chains = @(); error = $null }
    try {
        $request = [System.IO.File]::ReadAllText([System.IO.Path]::Combine($Folder, 'request.json')) | ConvertFrom-Json
        if ($request.purge_cache) {
            $ErrorActionPreference = 'Continue'
            $certutil = [System.IO.Path]::Combine($env:windir, 'System32', 'certutil.exe')
            $lines = @(& $certutil -urlcache '*' delete 2>&1 | ForEach-Object -Process { [string]$_ })
            $result.purge = [ordered]@{ rc = [int]$LASTEXITCODE; output = $lines -join "`r`n" }
            $ErrorActionPreference = 'Stop'
        }
        foreach ($target in @($request.targets)) {
            $entry = [ordered]@{ store = $target.store; thumbprint = $target.thumbprint; subject = $null
                elapsed_ms = $null; status = @(); elements = @(); error = $null }
            try {
                $certificate = Get-Item -LiteralPath ('Cert:\LocalMachine\' + $target.store + '\' + $target.thumbprint)
                $entry.subject = $certificate.Subject
                $chain = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Chain
                $chain.ChainPolicy.RevocationMode = [System.Security.Cryptography.X509Certificates.X509RevocationMode]::Online
                $chain.ChainPolicy.RevocationFlag = [System.Security.Cryptography.X509Certificates.X509RevocationFlag]::EntireChain
                $clock = [System.Diagnostics.Stopwatch]::StartNew()
                $null = $chain.Build($certificate)
                $entry.elapsed_ms = $clock.ElapsedMilliseconds
                $entry.status = @(foreach ($status in $chain.ChainStatus) { $status.Status.ToString() })
                $entry.elements = @(foreach ($element in $chain.ChainElements) {
                        [ordered]@{ subject = $element.Certificate.Subject
                            status = @(foreach ($status in $element.ChainElementStatus) { $status.Status.ToString() }) }
                    })
            } catch {
                $entry.error = $_.Exception.Message
            }
            $result.chains += $entry
        }
    } catch {
        $result.error = $_.Exception.Message
    }
    $json = ConvertTo-Json -InputObject $result -Compress -Depth 6
    # Written whole, then renamed: the waiting script sees result.json appear complete.
    [System.IO.File]::WriteAllText([System.IO.Path]::Combine($Folder, 'result.tmp'), $json)
    [System.IO.File]::Move([System.IO.Path]::Combine($Folder, 'result.tmp'), [System.IO.Path]::Combine($Folder, 'result.json'))
    exit 0
}

# Where `certutil -setreg chain\ChainCacheResyncFiletime @now` writes (wincrypt.h CERT_CHAIN_CONFIG_REGPATH,
# identity-evidence-research.md section 7): the chain engines drop what they cached before that time.
$CrlfixChainConfigKey = 'SOFTWARE\Microsoft\Cryptography\OID\EncodingType 0\CertDllCreateCertificateChainEngine\Config'

function Get-CrlfixChainCacheResync {
    # The ChainCacheResyncFiletime value as base64, or null when there is none.
    $key = (Open-CrlfixLocalMachineKey -View 'native').OpenSubKey($CrlfixChainConfigKey)
    if ($null -eq $key) { return $null }
    $value = $key.GetValue('ChainCacheResyncFiletime')
    $key.Close()
    if ($value -isnot [byte[]]) { return $null }
    [Convert]::ToBase64String($value)
}

function Invoke-CrlfixChainCacheResync {
    # certutil -setreg chain\ChainCacheResyncFiletime @now (certutil docs): @{ previous_b64; written_b64; rc; output }.
    $previous = Get-CrlfixChainCacheResync
    $certutil = Get-CrlfixSystemProgramPath -FileName 'certutil.exe' -View 'native'
    $written = Invoke-CrlfixNativeCommand -FilePath $certutil -ArgumentList @('-setreg', 'chain\ChainCacheResyncFiletime', '@now')
    [ordered]@{ previous_b64 = $previous; written_b64 = (Get-CrlfixChainCacheResync); rc = $written.rc; output = $written.output }
}

function Remove-CrlfixIdentityLeftover {
    # Tasks under \crlfix\ and run folders under %ProgramData%\crlfix that an aborted run left; returns how many.
    $count = 0
    foreach ($task in @(Get-ScheduledTask -TaskPath $CrlfixTaskPath -ErrorAction SilentlyContinue)) {
        Stop-ScheduledTask -InputObject $task -ErrorAction SilentlyContinue
        Unregister-ScheduledTask -InputObject $task -Confirm:$false -ErrorAction SilentlyContinue
        $count++
    }
    if ([System.IO.Directory]::Exists($CrlfixRunRoot)) {
        foreach ($folder in [System.IO.Directory]::GetDirectories($CrlfixRunRoot, 'id-*')) {
            Remove-Item -LiteralPath $folder -Recurse -Force -ErrorAction SilentlyContinue
            $count++
        }
    }
    $count
}

function Test-CrlfixRunnableAccount {
    # A built-in service account or a gMSA (name ends in $): run as without a password. Anything else is not run as.
    param([System.Collections.IDictionary]$Account)
    $null -ne $Account.sid -and ($CrlfixServiceAccountSids -contains [string]$Account.sid -or ([string]$Account.name).EndsWith('$'))
}

function Get-CrlfixIdentityTargets {
    # The certificates the services present: every certificate with a private key in the named LocalMachine stores.
    param([string[]]$StoreNames)
    @(foreach ($storeName in $StoreNames) {
            if ($storeName -cnotmatch $CrlfixStoreNamePattern) { continue }
            foreach ($certificate in @(Get-ChildItem -LiteralPath ('Cert:\LocalMachine\' + $storeName) -ErrorAction SilentlyContinue)) {
                if ($certificate.HasPrivateKey) { [ordered]@{ store = $storeName; thumbprint = $certificate.Thumbprint } }
            }
        })
}

function Start-CrlfixIdentityRun {
    # One identity's task: folder (ACL: the account by SID, SYSTEM, Administrators), request, probe, task, started.
    # Returns @{ account; task; folder; error }; an error leaves nothing behind.
    param([System.Collections.IDictionary]$Account, [object[]]$Targets, [bool]$PurgeCache)
    $run = @{ account = $Account; task = 'crlfix-' + [guid]::NewGuid().ToString('N'); folder = $null; error = $null }
    try {
        $run.folder = [System.IO.Path]::Combine($CrlfixRunRoot, 'id-' + $run.task.Substring(7))
        $null = [System.IO.Directory]::CreateDirectory($run.folder)
        $icacls = Get-CrlfixSystemProgramPath -FileName 'icacls.exe' -View 'native'
        $grant = Invoke-CrlfixNativeCommand -FilePath $icacls -ArgumentList @($run.folder, '/inheritance:r', '/grant:r',
            '*S-1-5-32-544:(OI)(CI)F', '*S-1-5-18:(OI)(CI)F', ('*' + $Account.sid + ':(OI)(CI)M'))
        if ($grant.rc -ne 0) { throw "icacls failed ($($grant.rc)): $($grant.output)" }
        $request = ConvertTo-Json -InputObject ([ordered]@{ purge_cache = $PurgeCache; targets = $Targets }) -Depth 4
        [System.IO.File]::WriteAllText([System.IO.Path]::Combine($run.folder, 'request.json'), $request)
        $probePath = [System.IO.Path]::Combine($run.folder, 'probe.ps1')
        [System.IO.File]::WriteAllText($probePath, $CrlfixIdentityProbe.ToString())
        $powershell = Get-CrlfixSystemProgramPath -FileName 'WindowsPowerShell\v1.0\powershell.exe' -View 'native'
        $arguments = '-NoProfile -NonInteractive -ExecutionPolicy Bypass -File "' + $probePath + '" -Folder "' + $run.folder + '"'
        $action = New-ScheduledTaskAction -Execute $powershell -Argument $arguments
        # Built-in service accounts: ServiceAccount; a gMSA: Password with no password (TASK_LOGON_SERVICE_ACCOUNT;
        # identity-evidence-research.md 1.1).
        $logonType = 'ServiceAccount'
        if ($CrlfixServiceAccountSids -notcontains [string]$Account.sid) { $logonType = 'Password' }
        $principal = New-ScheduledTaskPrincipal -UserId $Account.name -LogonType $logonType
        $settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit (New-TimeSpan -Minutes 5) -MultipleInstances IgnoreNew
        $null = Register-ScheduledTask -TaskPath $CrlfixTaskPath -TaskName $run.task -Action $action -Principal $principal -Settings $settings
        Start-ScheduledTask -TaskPath $CrlfixTaskPath -TaskName $run.task
    } catch {
        $run.error = Get-CrlfixErrorText -Failure $_
        Stop-CrlfixIdentityRun -Run $run
    }
    $run
}

function Stop-CrlfixIdentityRun {
    # Removes the run's task and folder, whatever state they are in.
    param([hashtable]$Run)
    Stop-ScheduledTask -TaskPath $CrlfixTaskPath -TaskName $Run.task -ErrorAction SilentlyContinue
    Unregister-ScheduledTask -TaskPath $CrlfixTaskPath -TaskName $Run.task -Confirm:$false -ErrorAction SilentlyContinue
    if ($null -ne $Run.folder -and [System.IO.Directory]::Exists($Run.folder)) {
        Remove-Item -LiteralPath $Run.folder -Recurse -Force -ErrorAction SilentlyContinue
    }
}

function Complete-CrlfixIdentityRuns {
    # Waits for every started task's result file, or until $DeadlineMs on $Clock; sets each account's
    # run = @{ task_result; elapsed_ms; purge; chains; error }; removes tasks and folders.
    param([object[]]$Runs, [System.Diagnostics.Stopwatch]$Clock, [long]$DeadlineMs, [string]$LateText)
    # No polling interval: each run's folder is watched for result.json (FileSystemWatcher.WaitForChanged), in slices
    # of at most 1 s because an answer that lands between the Exists test and the wait is not reported by the wait.
    $open = [System.Collections.Generic.List[hashtable]]::new()
    foreach ($run in $Runs) { if ($null -eq $run.error) { $open.Add($run) } }
    foreach ($run in @($open)) {
        $resultPath = [System.IO.Path]::Combine($run.folder, 'result.json')
        $watcher = New-Object -TypeName System.IO.FileSystemWatcher -ArgumentList @($run.folder, 'result.json')
        try {
            while (-not [System.IO.File]::Exists($resultPath) -and $Clock.ElapsedMilliseconds -lt $DeadlineMs) {
                $sliceMs = [int][Math]::Min(1000, $DeadlineMs - $Clock.ElapsedMilliseconds)
                $null = $watcher.WaitForChanged([System.IO.WatcherChangeTypes]'Created, Renamed', $sliceMs)
            }
        } finally {
            $watcher.Dispose()
        }
        if ([System.IO.File]::Exists($resultPath)) { $null = $open.Remove($run) }
    }
    foreach ($run in $Runs) {
        $outcome = [ordered]@{ task_result = $null; elapsed_ms = $Clock.ElapsedMilliseconds; purge = $null; chains = @()
            error = $run.error }
        try {
            if ($null -eq $run.error -and $open.Contains($run)) {
                $outcome.error = $LateText
            } elseif ($null -eq $run.error) {
                $taskResult = [long](Get-ScheduledTaskInfo -TaskPath $CrlfixTaskPath -TaskName $run.task).LastTaskResult
                # Still "running" while powershell.exe exits after writing: the result file is what counts then.
                if ($CrlfixTaskNotDone -notcontains $taskResult) { $outcome.task_result = $taskResult }
                $answer = [System.IO.File]::ReadAllText([System.IO.Path]::Combine($run.folder, 'result.json')) | ConvertFrom-Json
                $outcome.purge = $answer.purge
                $outcome.chains = @($answer.chains)
                $outcome.error = $answer.error
            }
        } catch {
            $outcome.error = Get-CrlfixErrorText -Failure $_
        } finally {
            if ($null -eq $run.error) { Stop-CrlfixIdentityRun -Run $run }
        }
        $run.account['run'] = $outcome
    }
}
