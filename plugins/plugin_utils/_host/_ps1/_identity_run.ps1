# Run as other identities (docs/dev/host-scripts.md, "host_audit", identities.chain): one scheduled task per identity
# builds the chain of each target certificate online with revocation over the entire chain, as that account (its own
# chain engine and URL cache, its own proxy view), and writes its result to a folder only that account, SYSTEM and
# Administrators may write. Task and folder are created, run, read and removed inside this one command.
#
# Task Scheduler 2.0's scripting objects (Schedule.Service), never the ScheduledTasks module: that module ships with
# Windows Server 2012 and later only (WMF 5.1 does not add it to 2008 R2 SP1), and its cmdlets are CIM classes, so a
# broken WMI repository stops them too. Schedule.Service exists from Windows Vista / Server 2008 on (Microsoft Learn,
# "Task Scheduler 2.0 Interfaces"); community.windows' win_scheduled_task.ps1 registers its tasks the same way.
$CrlfixTaskFolderName = 'crlfix'
$CrlfixWorkRoot = [System.IO.Path]::Combine($env:ProgramData, 'crlfix')
# Who may own the work folder and hold a right on it: SYSTEM and Administrators (and, as owner, the connecting admin:
# an administrator's new folder is owned by the Administrators group or by the administrator, per the policy "System
# objects: Default owner for objects created by members of the Administrators group").
$CrlfixWorkFolderTrustees = @('S-1-5-18', 'S-1-5-32-544')
# The runs' own deadline (identities.chain.deadline_ms), from the moment the tasks are started; not the measurement's
# time box: a task's cold powershell.exe as another account takes seconds to start.
$CrlfixIdentityDeadline = @{ Default = 30000; Minimum = 1000; Maximum = 300000 }
# taskschd.h constants (Microsoft Learn: TASK_CREATION, TASK_LOGON_TYPE, TASK_ACTION_TYPE, TASK_INSTANCES_POLICY,
# TASK_ENUM_FLAGS, TASK_STATE).
$CrlfixTaskConstants = @{
    CreateOrUpdate = 6; LogonPassword = 1; LogonServiceAccount = 5; ActionExec = 0; IgnoreNew = 2; EnumHidden = 1
    Queued = 2; Running = 4
}
# LastTaskResult while a task has not finished: SCHED_S_TASK_RUNNING, SCHED_S_TASK_HAS_NOT_RUN (Task Scheduler error
# and success constants).
$CrlfixTaskNotDone = @(267009, 267011)
# CreateProcess's limit on a command line (Microsoft Learn, CreateProcessW: 32,767 characters).
$CrlfixCommandLineLimit = 32767

# What the task runs, as powershell.exe -EncodedCommand: certutil's purge of this account's URL cache when asked, then
# X509Chain as this account (new X509Chain() = HCCE_CURRENT_USER, the caller's engine; referencesource x509chain.cs).
# Get-CrlfixProbeCommand puts $Folder, $PurgeCache and $Targets before it. The certificates are read with X509Store, not
# the Cert: drive, so the probe loads no module.
$CrlfixIdentityProbe = {
    $ErrorActionPreference = 'Stop'
    $result = [ordered]@{ started = [DateTime]::UtcNow.ToString('o'); purge = $null; chains = @(); error = $null }
    try {
        if ($PurgeCache) {
            $ErrorActionPreference = 'Continue'
            $certutil = [System.IO.Path]::Combine($env:windir, 'System32', 'certutil.exe')
            $lines = @(& $certutil -urlcache '*' delete 2>&1 | ForEach-Object -Process { [string]$_ })
            $result.purge = [ordered]@{ rc = [int]$LASTEXITCODE; output = $lines -join "`r`n" }
            $ErrorActionPreference = 'Stop'
        }
        foreach ($target in $Targets) {
            $entry = [ordered]@{ store = $target.store; thumbprint = $target.thumbprint; subject = $null
                elapsed_ms = $null; status = @(); elements = @(); error = $null }
            try {
                $store = [System.Security.Cryptography.X509Certificates.X509Store]::new($target.store,
                    [System.Security.Cryptography.X509Certificates.StoreLocation]::LocalMachine)
                $store.Open([System.Security.Cryptography.X509Certificates.OpenFlags]'ReadOnly, OpenExistingOnly')
                $found = $store.Certificates.Find([System.Security.Cryptography.X509Certificates.X509FindType]::FindByThumbprint,
                    $target.thumbprint, $false)
                $store.Close()
                if ($found.Count -eq 0) { throw ('no certificate ' + $target.thumbprint + ' in LocalMachine\' + $target.store) }
                $certificate = $found[0]
                $entry.subject = $certificate.Subject
                $chain = [System.Security.Cryptography.X509Certificates.X509Chain]::new()
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
    $json = ConvertTo-Json -InputObject $result -Compress -Depth 12
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

function Get-CrlfixIdentityDeadline {
    # identities.chain.deadline_ms, checked: an integer from 1 s to 5 min (the task's own ExecutionTimeLimit).
    param([object]$Chain)
    $value = Get-CrlfixArgument -Arguments $Chain -Name 'deadline_ms' -Default $CrlfixIdentityDeadline.Default
    if (($value -isnot [int] -and $value -isnot [long]) -or $value -lt $CrlfixIdentityDeadline.Minimum -or
        $value -gt $CrlfixIdentityDeadline.Maximum) {
        throw ("identities.chain.deadline_ms: expected an integer from $($CrlfixIdentityDeadline.Minimum) to " +
            "$($CrlfixIdentityDeadline.Maximum), got $value")
    }
    [long]$value
}

function Get-CrlfixHResult {
    # The HRESULT of a failure as an unsigned number (0x80070569 = 2147943785), from its innermost exception.
    param([object]$Failure)
    $exception = $Failure
    if ($Failure -is [System.Management.Automation.ErrorRecord]) { $exception = $Failure.Exception }
    if ($exception -isnot [System.Exception]) { return $null }
    while ($null -ne $exception.InnerException) { $exception = $exception.InnerException }
    [long]$exception.HResult -band 4294967295
}

function Get-CrlfixWorkFolderProblem {
    # Why a folder may not hold the identities' results, or $null. Each test and the Windows behaviour it rests on:
    # - a junction or symbolic link is a reparse point, and reading a link's attributes does not follow it (Microsoft
    #   Learn, "Symbolic Link Effects on File Systems Functions", GetFileAttributes): a link would send the work, and
    #   any removal, into a folder someone else chose;
    # - an owner may always rewrite the DACL (Microsoft Learn, "Owner of a New Object": the owner implicitly has
    #   WRITE_DAC), so a folder a user owns is theirs whatever its ACL says now;
    # - %ProgramData% lets Users create files and folders in it, and a new folder inherits that: only a protected DACL
    #   (inheritance off) whose every allowed entry is SYSTEM, Administrators or $WriterSid keeps others out.
    param([string]$Path, [string]$WriterSid)
    $folder = [System.IO.DirectoryInfo]::new($Path)
    if (($folder.Attributes -band [System.IO.FileAttributes]::ReparsePoint) -ne 0) {
        return 'it is a reparse point (a junction or a symbolic link)'
    }
    $security = $folder.GetAccessControl([System.Security.AccessControl.AccessControlSections]'Owner, Access')
    $owner = $security.GetOwner([System.Security.Principal.SecurityIdentifier]).Value
    $caller = [System.Security.Principal.WindowsIdentity]::GetCurrent().User.Value
    if ($CrlfixWorkFolderTrustees -notcontains $owner -and $owner -ne $caller) {
        return "its owner is $owner, not SYSTEM, Administrators or the connecting account"
    }
    if (-not $security.AreAccessRulesProtected) {
        return 'it inherits its ACL from its parent, where Users may create files and folders'
    }
    foreach ($rule in $security.GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier])) {
        $sid = $rule.IdentityReference.Value
        if ($rule.AccessControlType -eq [System.Security.AccessControl.AccessControlType]::Allow -and
            $CrlfixWorkFolderTrustees -notcontains $sid -and $sid -ne $WriterSid) {
            return "its ACL allows $sid $($rule.FileSystemRights)"
        }
    }
    $null
}

function New-CrlfixProtectedFolder {
    # Creates $Path with a DACL of its own, inheritance off: SYSTEM and Administrators full control and, for a run
    # folder, the account that writes its result Modify. The DACL is given at creation (Directory.CreateDirectory with a
    # DirectorySecurity), so there is no moment when %ProgramData%'s inherited entries apply. A folder that already
    # exists is left as it is (CreateDirectory then does nothing): the caller checks whatever is there afterwards.
    param([string]$Path, [string]$WriterSid)
    $security = [System.Security.AccessControl.DirectorySecurity]::new()
    $security.SetAccessRuleProtection($true, $false)
    $inherit = [System.Security.AccessControl.InheritanceFlags]'ContainerInherit, ObjectInherit'
    $grants = @(foreach ($sid in $CrlfixWorkFolderTrustees) { @{ sid = $sid; rights = 'FullControl' } })
    if (-not [string]::IsNullOrEmpty($WriterSid)) { $grants += @{ sid = $WriterSid; rights = 'Modify' } }
    foreach ($grant in $grants) {
        $security.AddAccessRule([System.Security.AccessControl.FileSystemAccessRule]::new(
                [System.Security.Principal.SecurityIdentifier]::new($grant.sid),
                [System.Security.AccessControl.FileSystemRights]$grant.rights, $inherit,
                [System.Security.AccessControl.PropagationFlags]::None, [System.Security.AccessControl.AccessControlType]::Allow))
    }
    $null = [System.IO.Directory]::CreateDirectory($Path, $security)
}

function Remove-CrlfixWorkItem {
    # Removes one run folder without ever following a link: a link is deleted as a link (DeleteFile and RemoveDirectory
    # delete a symbolic link or junction, never its target: Microsoft Learn, DeleteFileW and RemoveDirectoryW), each
    # entry one by one, never recursively (Windows PowerShell 5.1's Remove-Item -Recurse follows junctions and deletes
    # what they point at: PowerShell/PowerShell#621). A real subfolder, which no run makes, stays, and so does the folder
    # then. Returns whether the folder is gone.
    param([string]$Path)
    $folder = [System.IO.DirectoryInfo]::new($Path)
    if (-not $folder.Exists) { return $true }
    try {
        if (($folder.Attributes -band [System.IO.FileAttributes]::ReparsePoint) -eq 0) {
            foreach ($entry in $folder.GetFileSystemInfos()) {
                if ($entry -is [System.IO.FileInfo]) {
                    [System.IO.File]::Delete($entry.FullName)
                } elseif (($entry.Attributes -band [System.IO.FileAttributes]::ReparsePoint) -ne 0) {
                    [System.IO.Directory]::Delete($entry.FullName, $false)
                }
            }
        }
        [System.IO.Directory]::Delete($Path, $false)
        $true
    } catch {
        $false
    }
}

function ConvertTo-CrlfixQuotedLiteral {
    # A PowerShell single-quoted literal: every quote PowerShell reads as a single quote (' and U+2018 to U+201B) doubled.
    param([string]$Text)
    "'" + [regex]::Replace($Text, '[''\u2018-\u201B]', '$0$0') + "'"
}

function Get-CrlfixProbeCommand {
    # The probe as the base64 of its UTF-16LE text, for powershell.exe -EncodedCommand: no script file exists for anyone
    # to swap, and an execution policy, even one Group Policy sets (which beats -ExecutionPolicy Bypass), governs script
    # files, not a command (about_Execution_Policies: Restricted "permits individual commands, but does not allow
    # scripts").
    param([string]$Folder, [object[]]$Targets, [bool]$PurgeCache)
    $purgeText = '$false'
    if ($PurgeCache) { $purgeText = '$true' }
    $items = @(foreach ($target in $Targets) {
            '@{ store = ' + (ConvertTo-CrlfixQuotedLiteral -Text $target.store) + '; thumbprint = ' +
            (ConvertTo-CrlfixQuotedLiteral -Text $target.thumbprint) + ' }'
        })
    $text = @('$Folder = ' + (ConvertTo-CrlfixQuotedLiteral -Text $Folder), ('$PurgeCache = ' + $purgeText),
        ('$Targets = @(' + ($items -join ', ') + ')'), $CrlfixIdentityProbe.ToString()) -join "`n"
    [Convert]::ToBase64String([System.Text.Encoding]::Unicode.GetBytes($text))
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

function Get-CrlfixTaskFolder {
    # Task Scheduler's \crlfix folder, or $null when it does not exist and -Create is not given.
    param([object]$Service, [switch]$Create)
    try {
        return $Service.GetFolder('\' + $CrlfixTaskFolderName)
    } catch {
        if (-not $Create) { return $null }
    }
    $Service.GetFolder('\').CreateFolder($CrlfixTaskFolderName)
}

function Remove-CrlfixIdentityLeftover {
    # What an aborted run left: every task under \crlfix\ and, in a trusted work folder only, every id-* run folder
    # (removed as Remove-CrlfixWorkItem does: never through a link). Returns how many.
    param([object]$Service, [bool]$FolderTrusted)
    $count = 0
    $taskFolder = Get-CrlfixTaskFolder -Service $Service
    if ($null -ne $taskFolder) {
        foreach ($task in @($taskFolder.GetTasks($CrlfixTaskConstants.EnumHidden))) {
            if ($task.State -eq $CrlfixTaskConstants.Running) { $task.Stop(0) }
            $taskFolder.DeleteTask($task.Name, 0)
            $count++
        }
    }
    if ($FolderTrusted -and [System.IO.Directory]::Exists($CrlfixWorkRoot)) {
        foreach ($folder in [System.IO.Directory]::GetDirectories($CrlfixWorkRoot, 'id-*')) {
            if (Remove-CrlfixWorkItem -Path $folder) { $count++ }
        }
    }
    $count
}

function Start-CrlfixIdentityRun {
    # One identity's task: its run folder (SYSTEM, Administrators, the account by SID), the task registered with the
    # probe as its -EncodedCommand, started. Returns the run; a failure before the start is the run's outcome
    # not_started with its HRESULT, and leaves nothing behind.
    param([System.Collections.IDictionary]$Account, [object[]]$Targets, [bool]$PurgeCache, [object]$Service,
        [object]$TaskFolder, [System.Diagnostics.Stopwatch]$Clock)
    $identifier = [guid]::NewGuid().ToString('N')
    $run = @{ account = $Account; task = 'crlfix-' + $identifier; folder = [System.IO.Path]::Combine($CrlfixWorkRoot, 'id-' + $identifier)
        registered = $null; watcher = $null; requested = $null; started_ms = $null; seen_ms = $null; outcome = $null
        task_result = $null; hresult = $null; error = $null; folder_left = $false }
    try {
        New-CrlfixProtectedFolder -Path $run.folder -WriterSid $Account.sid
        $problem = Get-CrlfixWorkFolderProblem -Path $run.folder -WriterSid $Account.sid
        if ($null -ne $problem) { throw "the run folder $($run.folder) cannot be trusted: $problem" }
        # Always the 64-bit System32 path: the Task Scheduler service is a 64-bit process, for which Sysnative does not
        # exist (File System Redirector, Microsoft Learn: Sysnative is seen by 32-bit processes only).
        $powershell = [System.IO.Path]::Combine($env:windir, 'System32', 'WindowsPowerShell', 'v1.0', 'powershell.exe')
        $arguments = '-NoProfile -NonInteractive -EncodedCommand ' + (Get-CrlfixProbeCommand -Folder $run.folder -Targets $Targets -PurgeCache $PurgeCache)
        if ($powershell.Length + $arguments.Length + 3 -gt $CrlfixCommandLineLimit) {
            throw "the probe's command line would be $($powershell.Length + $arguments.Length + 3) characters, over $CrlfixCommandLineLimit"
        }
        $definition = $Service.NewTask(0)
        $definition.RegistrationInfo.Description = 'crlfix.windows: the chain built as ' + $Account.name + ' (removed by the same command)'
        # Start on batteries too (the default refuses a start on a host running from its UPS), one instance, and end
        # it after 5 minutes whatever happens to this command.
        $definition.Settings.DisallowStartIfOnBatteries = $false
        $definition.Settings.StopIfGoingOnBatteries = $false
        $definition.Settings.AllowDemandStart = $true
        $definition.Settings.MultipleInstances = $CrlfixTaskConstants.IgnoreNew
        $definition.Settings.ExecutionTimeLimit = 'PT5M'
        # The principal: a built-in service account with TASK_LOGON_SERVICE_ACCOUNT, a gMSA with TASK_LOGON_PASSWORD and
        # no password (the host fetches it from AD; win_scheduled_task needs no password for a gMSA). Registered with no
        # user, password or logon type, so the definition's principal applies, as win_scheduled_task.ps1 registers a
        # task without a password (RegisterTaskDefinition: "If present, these credentials take priority").
        $definition.Principal.UserId = $Account.name
        $definition.Principal.LogonType = $CrlfixTaskConstants.LogonServiceAccount
        if ($CrlfixServiceAccountSids -notcontains [string]$Account.sid) {
            $definition.Principal.LogonType = $CrlfixTaskConstants.LogonPassword
        }
        $action = $definition.Actions.Create($CrlfixTaskConstants.ActionExec)
        $action.Path = $powershell
        $action.Arguments = $arguments
        $run.watcher = [System.IO.FileSystemWatcher]::new($run.folder, 'result.json')
        $run.registered = $TaskFolder.RegisterTaskDefinition($run.task, $definition, $CrlfixTaskConstants.CreateOrUpdate,
            $null, $null, $null)
        $run.requested = [DateTime]::UtcNow
        $run.started_ms = $Clock.ElapsedMilliseconds
        $null = $run.registered.Run($null)
    } catch {
        $run.outcome = 'not_started'
        $run.hresult = Get-CrlfixHResult -Failure $_
        $run.error = Get-CrlfixErrorText -Failure $_
        Stop-CrlfixIdentityRun -Run $run -TaskFolder $TaskFolder
    }
    $run
}

function Stop-CrlfixIdentityRun {
    # Removes the run's task (stopped first if it still runs) and its folder, whatever state they are in.
    param([hashtable]$Run, [object]$TaskFolder)
    if ($null -ne $Run.watcher) { $Run.watcher.Dispose() }
    if ($null -ne $Run.registered) {
        try {
            if ($Run.registered.State -eq $CrlfixTaskConstants.Running) { $Run.registered.Stop(0) }
            $TaskFolder.DeleteTask($Run.task, 0)
        } catch {
            if ($null -eq $Run.error) { $Run.error = 'the task could not be removed: ' + (Get-CrlfixErrorText -Failure $_) }
        }
    }
    $Run.folder_left = -not (Remove-CrlfixWorkItem -Path $Run.folder)
}

function Test-CrlfixWorkRoot {
    # Checks the work folder into $WorkFolder (trusted, reason); a check that cannot be made refuses the folder.
    param([System.Collections.IDictionary]$WorkFolder)
    try {
        $WorkFolder.reason = Get-CrlfixWorkFolderProblem -Path $CrlfixWorkRoot -WriterSid $null
    } catch {
        $WorkFolder.reason = 'its security could not be read: ' + (Get-CrlfixErrorText -Failure $_)
    }
    $WorkFolder.trusted = $null -eq $WorkFolder.reason
}

function Start-CrlfixIdentityRuns {
    # The chain as each runnable identity (identities.chain): the work folder checked (created when runs are due and it
    # does not exist), what an aborted run left removed, the resync written when asked, then one task per identity.
    # Fills $Part's work_folder, leftovers_removed, resync and, when the runs cannot start at all, chain_error; returns
    # the session Complete-CrlfixIdentityRuns ends (whatever failed, the runs already started are in it).
    param([System.Collections.IDictionary]$Part, [object]$Chain, [System.Diagnostics.Stopwatch]$Clock)
    $session = @{ service = $null; task_folder = $null; runs = @(); root_trusted = $false }
    $workFolder = [ordered]@{ path = $CrlfixWorkRoot; existed = [System.IO.Directory]::Exists($CrlfixWorkRoot)
        created = $false; trusted = $null; reason = $null; removed = $false; left = @() }
    $Part['work_folder'] = $workFolder
    $Part['leftovers_removed'] = 0
    try {
        if ($workFolder.existed) { Test-CrlfixWorkRoot -WorkFolder $workFolder }
        $session.root_trusted = $workFolder.trusted -eq $true
        $session.service = New-Object -ComObject 'Schedule.Service'
        $session.service.Connect()
        $Part['leftovers_removed'] = Remove-CrlfixIdentityLeftover -Service $session.service -FolderTrusted $session.root_trusted
        if (Get-CrlfixArgument -Arguments $Chain -Name 'resync' -Default $false) { $Part['resync'] = Invoke-CrlfixChainCacheResync }
        $targets = Get-CrlfixIdentityTargets -StoreNames @($Chain.stores)
        $Part['targets'] = $targets.Count
        $accounts = @(foreach ($account in $Part['accounts']) { if (Test-CrlfixRunnableAccount -Account $account) { $account } })
        if ($targets.Count -eq 0 -or $accounts.Count -eq 0) { return $session }
        if (-not $workFolder.existed) {
            New-CrlfixProtectedFolder -Path $CrlfixWorkRoot -WriterSid $null
            $workFolder.created = $true
            Test-CrlfixWorkRoot -WorkFolder $workFolder
            $session.root_trusted = $workFolder.trusted
        }
        # A folder that fails the checks stops the runs here: no task is made and nothing in it is touched.
        if (-not $session.root_trusted) { return $session }
        $session.task_folder = Get-CrlfixTaskFolder -Service $session.service -Create
        $purge = [bool](Get-CrlfixArgument -Arguments $Chain -Name 'purge_cache' -Default $false)
        foreach ($account in $accounts) {
            $session.runs += Start-CrlfixIdentityRun -Account $account -Targets $targets -PurgeCache $purge `
                -Service $session.service -TaskFolder $session.task_folder -Clock $Clock
        }
    } catch {
        $Part['chain_error'] = Get-CrlfixErrorText -Failure $_
        $Part['chain_hresult'] = Get-CrlfixHResult -Failure $_
    }
    $session
}

function Complete-CrlfixIdentityRuns {
    # Waits until every started task has written its result or ended, or until $DeadlineMs on $Clock; sets each
    # account's run = @{ outcome; task_result; hresult; elapsed_ms; start_ms; purge; chains; error } (outcome finished,
    # late, no_result or not_started); removes tasks, run folders, then the work folder and the task folder when empty.
    param([hashtable]$Session, [System.Collections.IDictionary]$Part, [System.Diagnostics.Stopwatch]$Clock, [long]$DeadlineMs)
    $open = [System.Collections.Generic.List[hashtable]]::new()
    foreach ($run in $Session.runs) { if ($null -eq $run.outcome) { $open.Add($run) } }
    # The result file is waited for (FileSystemWatcher.WaitForChanged), in slices of at most 1 s: an answer that lands
    # between a test and the wait is not reported by the wait, and a task that ended without writing one (a logon
    # refused: 0x80070569) has no event a script can wait on, so its state and LastTaskResult are read once a slice.
    while ($open.Count -gt 0 -and $Clock.ElapsedMilliseconds -lt $DeadlineMs) {
        $sliceMs = [int][Math]::Min(1000, $DeadlineMs - $Clock.ElapsedMilliseconds)
        $null = $open[0].watcher.WaitForChanged([System.IO.WatcherChangeTypes]'Created, Renamed', $sliceMs)
        foreach ($run in @($open)) {
            $resultPath = [System.IO.Path]::Combine($run.folder, 'result.json')
            try {
                if (-not [System.IO.File]::Exists($resultPath)) {
                    $task = $Session.task_folder.GetTask($run.task)
                    $lastResult = [long]$task.LastTaskResult -band 4294967295
                    $ended = @($CrlfixTaskConstants.Queued, $CrlfixTaskConstants.Running) -notcontains $task.State -and
                        $CrlfixTaskNotDone -notcontains $lastResult
                    if ($ended -and -not [System.IO.File]::Exists($resultPath)) { $run.outcome = 'no_result'; $run.task_result = $lastResult }
                } else {
                    $run.outcome = 'finished'
                }
            } catch {
                # The task can no longer be read (removed by someone else, the service stopped): no answer will come.
                $run.outcome = 'no_result'
                $run.error = 'the task could not be read: ' + (Get-CrlfixErrorText -Failure $_)
            }
            if ($null -ne $run.outcome) { $run.seen_ms = $Clock.ElapsedMilliseconds; $null = $open.Remove($run) }
        }
    }
    foreach ($run in $open) {
        $state = 'running'
        try {
            if ($Session.task_folder.GetTask($run.task).State -eq $CrlfixTaskConstants.Queued) { $state = 'queued (not started)' }
        } catch {
            $state = 'in an unknown state (' + (Get-CrlfixErrorText -Failure $_) + ')'
        }
        $run.outcome = 'late'
        $run.error = "not finished within the deadline of $($Part['deadline_ms']) ms: the task was still $state"
        $run.seen_ms = $Clock.ElapsedMilliseconds
    }
    foreach ($run in $Session.runs) {
        $outcome = [ordered]@{ outcome = $run.outcome; task_result = $run.task_result; hresult = $run.hresult
            elapsed_ms = $null; start_ms = $null; purge = $null; chains = @(); error = $run.error }
        try {
            if ($null -ne $run.started_ms -and $null -ne $run.seen_ms) { $outcome.elapsed_ms = $run.seen_ms - $run.started_ms }
            if ($run.outcome -eq 'finished') {
                $lastResult = [long]$Session.task_folder.GetTask($run.task).LastTaskResult -band 4294967295
                # Still "running" while powershell.exe exits after writing: the result file is what counts then.
                if ($CrlfixTaskNotDone -notcontains $lastResult) { $outcome.task_result = $lastResult }
                $answer = [System.IO.File]::ReadAllText([System.IO.Path]::Combine($run.folder, 'result.json')) | ConvertFrom-Json
                $outcome.purge = $answer.purge
                $outcome.chains = @($answer.chains)
                $outcome.error = $answer.error
                $probeStart = [DateTime]::Parse($answer.started, [System.Globalization.CultureInfo]::InvariantCulture,
                    [System.Globalization.DateTimeStyles]::RoundtripKind)
                $outcome.start_ms = [long]($probeStart.ToUniversalTime() - $run.requested).TotalMilliseconds
            }
        } catch {
            $outcome.error = Get-CrlfixErrorText -Failure $_
        } finally {
            if ($run.outcome -ne 'not_started') { Stop-CrlfixIdentityRun -Run $run -TaskFolder $Session.task_folder }
        }
        if ($run.folder_left) { $Part['work_folder'].left += $run.folder }
        $run.account['run'] = $outcome
    }
    Close-CrlfixIdentityRuns -Session $Session -Part $Part
}

function Close-CrlfixIdentityRuns {
    # Leaves nothing behind: the work folder and \crlfix\ when they are empty (never anything a check refused).
    param([hashtable]$Session, [System.Collections.IDictionary]$Part)
    if ($Session.root_trusted -and [System.IO.Directory]::Exists($CrlfixWorkRoot) -and
        [System.IO.Directory]::GetFileSystemEntries($CrlfixWorkRoot).Length -eq 0) {
        [System.IO.Directory]::Delete($CrlfixWorkRoot, $false)
        $Part['work_folder'].removed = $true
    }
    if ($null -ne $Session.task_folder -and @($Session.task_folder.GetTasks($CrlfixTaskConstants.EnumHidden)).Count -eq 0) {
        $Session.service.GetFolder('\').DeleteFolder($CrlfixTaskFolderName, 0)
    }
}
