#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Removes the wanlayer NDIS lightweight filter and, unless told otherwise, its test certificate.

.DESCRIPTION
    1. netcfg -v -u @COMPONENT_ID@ (unbinds the filter from every adapter and deletes the service).
    2. Deletes the driver package from the driver store (pnputil /delete-driver oemNN.inf).
    3. Removes wanlayer-test.cer from LocalMachine\Root and LocalMachine\TrustedPublisher.
    4. With -DisableTestSigning, turns test signing off (a reboot is needed).

    Stamped by `cargo xtask package` for @ARCH@, wanlayer @VERSION@.

.PARAMETER KeepCertificate
    Leave the test certificate trusted (to install another build signed with it).

.PARAMETER DisableTestSigning
    Also run bcdedit /set testsigning off.
#>
[CmdletBinding()]
param(
    [switch]$KeepCertificate,
    [switch]$DisableTestSigning
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$ComponentId = '@COMPONENT_ID@'
$ServiceName = '@SERVICE_NAME@'
$Certificate = Join-Path $PSScriptRoot 'wanlayer-test.cer'

function Step([string]$Text) { Write-Host "==> $Text" -ForegroundColor Cyan }

Step "Removing the filter: netcfg -v -u $ComponentId"
& netcfg -v -u $ComponentId | Out-Host
switch ($LASTEXITCODE) {
    0 { Write-Host '    removed' }
    0x0004A020 { Write-Host '    removed; a reboot finishes the removal (NETCFG_S_REBOOT)' -ForegroundColor Yellow }
    default { Write-Host "    netcfg exit code $LASTEXITCODE (not installed, or see %windir%\INF\setupapi.dev.log)" -ForegroundColor Yellow }
}

Step 'Removing the driver package from the driver store'
$packages = @(Get-WindowsDriver -Online -ErrorAction SilentlyContinue |
    Where-Object { $_.OriginalFileName -like "*\$ServiceName.inf" })
if ($packages.Count -eq 0) {
    Write-Host '    none staged'
}
foreach ($package in $packages) {
    & pnputil /delete-driver $package.Driver /uninstall | Out-Host
    Write-Host "    $($package.Driver) (version $($package.Version)): pnputil exit code $LASTEXITCODE"
}

if (-not $KeepCertificate) {
    Step 'Removing the test certificate from LocalMachine\Root and LocalMachine\TrustedPublisher'
    if (Test-Path $Certificate) {
        $thumbprint = (New-Object System.Security.Cryptography.X509Certificates.X509Certificate2 $Certificate).Thumbprint
        foreach ($store in 'Root', 'TrustedPublisher') {
            $path = "Cert:\LocalMachine\$store\$thumbprint"
            if (Test-Path $path) {
                Remove-Item $path
                Write-Host "    ${store}: removed $thumbprint"
            } else {
                Write-Host "    ${store}: not present"
            }
        }
    } else {
        Write-Host "    $Certificate is missing: remove the certificate 'CN=wanlayer test signing' by hand (certlm.msc)" -ForegroundColor Yellow
    }
}

if ($DisableTestSigning) {
    Step 'Turning test signing off'
    & bcdedit /set testsigning off | Out-Host
    Write-Host 'Test signing is off after the next REBOOT.' -ForegroundColor Yellow
}

Write-Host 'uninstall: done. If Driver Verifier was on for the driver, run .\verifier.ps1 -Reset too.'
