#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Installs the wanlayer NDIS lightweight filter from this package directory (test-signed).

.DESCRIPTION
    1. Checks that the package is complete and built for this machine's architecture.
    2. Imports wanlayer-test.cer into LocalMachine\Root and LocalMachine\TrustedPublisher, so
       Windows trusts the test signature of wanlayer.sys and wanlayer.cat.
    3. Checks that test signing is on; if not, turns it on (bcdedit /set testsigning on) and stops:
       reboot, then run this script again.
    4. Installs the filter: netcfg -v -l wanlayer.inf -c s -i @COMPONENT_ID@
    5. Shows the filter's service state and its bindings (WAN Miniport adapters are hidden, so
       -IncludeHidden).

    Stamped by `cargo xtask package` for @ARCH@, wanlayer @VERSION@. Run it from an elevated
    PowerShell on the test machine, never on a machine you cannot afford to reboot or lose.

.PARAMETER SkipTestSigningCheck
    Install even when test signing is off (for a machine that trusts the signer another way).
#>
[CmdletBinding()]
param(
    [switch]$SkipTestSigningCheck
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$ComponentId = '@COMPONENT_ID@'
$ServiceName = '@SERVICE_NAME@'
$PackageArch = '@ARCH@'
$Here = $PSScriptRoot
$Inf = Join-Path $Here "$ServiceName.inf"
$Certificate = Join-Path $Here 'wanlayer-test.cer'

function Step([string]$Text) { Write-Host "==> $Text" -ForegroundColor Cyan }
function Fail([string]$Text) { Write-Host "install: $Text" -ForegroundColor Red; exit 1 }

Step 'Checking the package'
foreach ($file in @("$ServiceName.inf", "$ServiceName.sys", "$ServiceName.cat", 'wanlayer-test.cer')) {
    if (-not (Test-Path (Join-Path $Here $file))) {
        Fail "$file is missing from ${Here}: copy the whole target\package\$PackageArch directory."
    }
}
$machineArch = switch ($env:PROCESSOR_ARCHITECTURE) {
    'AMD64' { 'x64' }
    'ARM64' { 'arm64' }
    default { $env:PROCESSOR_ARCHITECTURE }
}
if ($machineArch -ne $PackageArch) {
    Fail "this package is for $PackageArch, this machine is ${machineArch}: use target\package\$machineArch."
}

Step 'Trusting the test certificate (LocalMachine\Root and LocalMachine\TrustedPublisher)'
foreach ($store in 'Root', 'TrustedPublisher') {
    $imported = Import-Certificate -FilePath $Certificate -CertStoreLocation "Cert:\LocalMachine\$store"
    Write-Host "    ${store}: $($imported.Subject) ($($imported.Thumbprint))"
}

Step 'Checking test signing'
$bootEntry = (& bcdedit /enum '{current}') -join "`n"
$testSigningOn = $bootEntry -match '(?im)^\s*testsigning\s+(Yes|On)\s*$'
if ($testSigningOn) {
    Write-Host '    test signing is on'
} elseif ($SkipTestSigningCheck) {
    Write-Host '    test signing is off; continuing because of -SkipTestSigningCheck' -ForegroundColor Yellow
} else {
    $secureBoot = $false
    try { $secureBoot = Confirm-SecureBootUEFI } catch { $secureBoot = $false }
    if ($secureBoot) {
        Fail ('test signing is off and Secure Boot is on: Windows refuses "bcdedit /set testsigning on" ' +
            'while Secure Boot is enabled. Turn Secure Boot off in the firmware (or the VM settings), then run this again.')
    }
    & bcdedit /set testsigning on | Out-Host
    if ($LASTEXITCODE -ne 0) { Fail "bcdedit /set testsigning on failed (exit code $LASTEXITCODE)." }
    Write-Host ''
    Write-Host 'Test signing is now ON. A REBOOT IS NEEDED before Windows loads test-signed drivers.' -ForegroundColor Yellow
    Write-Host "Reboot, then run $($MyInvocation.MyCommand.Name) again." -ForegroundColor Yellow
    exit 3010
}

Step "Installing the filter: netcfg -v -l $Inf -c s -i $ComponentId"
& netcfg -v -l $Inf -c s -i $ComponentId | Out-Host
$netcfgExit = $LASTEXITCODE
switch ($netcfgExit) {
    0 { Write-Host '    installed' }
    0x0004A020 { Write-Host '    installed; netcfg asks for a reboot to finish (NETCFG_S_REBOOT)' -ForegroundColor Yellow }
    default {
        Fail ("netcfg failed (exit code $netcfgExit). Look at %windir%\INF\setupapi.dev.log and at " +
            'Event Viewer > Applications and Services Logs > Microsoft > Windows > CodeIntegrity > Operational ' +
            '(a signature problem shows there).')
    }
}

Step "Driver service '$ServiceName'"
& sc.exe query $ServiceName | Out-Host

Step "Bindings of $ComponentId (hidden adapters included: the WAN Miniports are hidden)"
Get-NetAdapterBinding -IncludeHidden -ComponentID $ComponentId -ErrorAction SilentlyContinue |
    Sort-Object Name |
    Format-Table -AutoSize Name, InterfaceDescription, DisplayName, Enabled |
    Out-Host
Write-Host 'Look for "WAN Miniport (IP)" and "WAN Miniport (IPv6)" with Enabled = True.'
Write-Host 'Next: .\verifier.ps1 to run the driver under Driver Verifier (see RUNBOOK.md).'
