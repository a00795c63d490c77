#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Runs the wanlayer driver under Driver Verifier, shows what Verifier is doing, or turns it off.

.DESCRIPTION
    With no switch: verifier /flags 0x2209BB /driver @SERVICE_NAME@.sys
        0x209BB   the standard checks (special pool, forced IRQL checking, pool tracking,
                  I/O verification, deadlock detection, DMA checking, security checks,
                  miscellaneous checks, DDI compliance checking)
        0x200000  NDIS/WIFI verification: the NDIS filter rules. A violation is bug check 0xC4
                  naming the rule, e.g. NdisFilterTimedPauseComplete, NdisFilterTimedDataSend,
                  NdisFilterTimedDataReceive, NdisOidComplete, NdisOidDoubleComplete,
                  NdisOidDoubleRequest, NdisTimedOidComplete, Irql_Filter_Driver_Function,
                  Irql_SendRcv_Function, Irql_StatusIndication_Function, SpinLock,
                  SpinlockRelease, DoubleComplete, NdisFDeregisterFilterDriver.
    The settings take effect after a reboot.

    Stamped by `cargo xtask package` for @ARCH@, wanlayer @VERSION@.

.PARAMETER Query
    Show the configured settings (verifier /querysettings) and, once the driver is loaded, the
    live counters (verifier /query).

.PARAMETER Reset
    Turn Driver Verifier off for every driver (verifier /reset); takes effect after a reboot.
#>
[CmdletBinding(DefaultParameterSetName = 'Enable')]
param(
    [Parameter(ParameterSetName = 'Query')][switch]$Query,
    [Parameter(ParameterSetName = 'Reset')][switch]$Reset
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$Driver = '@SERVICE_NAME@.sys'
$Flags = '0x2209BB'

function Step([string]$Text) { Write-Host "==> $Text" -ForegroundColor Cyan }

if ($Query) {
    Step 'Configured settings: verifier /querysettings'
    & verifier /querysettings | Out-Host
    Step 'Live statistics: verifier /query (empty until the driver is loaded with Verifier on)'
    & verifier /query | Out-Host
    exit 0
}

if ($Reset) {
    Step 'Turning Driver Verifier off: verifier /reset'
    & verifier /reset | Out-Host
    Write-Host 'Driver Verifier is off after the next REBOOT.' -ForegroundColor Yellow
    exit 0
}

Step "Enabling Driver Verifier for ${Driver}: verifier /flags $Flags /driver $Driver"
& verifier /flags $Flags /driver $Driver | Out-Host
if ($LASTEXITCODE -ne 0) {
    Write-Host "verifier exit code ${LASTEXITCODE}: check the settings with .\verifier.ps1 -Query" -ForegroundColor Yellow
}
Write-Host ''
Write-Host 'Driver Verifier is configured. REBOOT for it to take effect.' -ForegroundColor Yellow
Write-Host 'Before you do: have a kernel debugger attached or a complete memory dump configured'
Write-Host '(System Properties > Advanced > Startup and Recovery), since a violation is a bug check (0xC4).'
Write-Host 'After the reboot: .\verifier.ps1 -Query shows the counters; .\verifier.ps1 -Reset turns it off.'
