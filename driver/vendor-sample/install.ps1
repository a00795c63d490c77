#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Installs @VENDOR_SERVICE@.sys, the wanlayer SDK's sample vendor driver, as a demand-start
    kernel service, and starts it.

.DESCRIPTION
    A vendor driver that loads through wanlayer is a plain kernel service, not a network
    component: no INF, no netcfg, no binding. It finds wanlayer at run time (\Device\WanLayer) and
    imports nothing from wanlayer.sys.

    1. Checks the package, and that the wanlayer filter (service '@SERVICE_NAME@') is installed:
       run install.ps1 first.
    2. Checks the signatures: @VENDOR_SERVICE@.sys carries an embedded test signature (what the
       kernel checks when it loads a service's image) and is listed in @VENDOR_SERVICE@.cat.
    3. Copies @VENDOR_SERVICE@.sys to %SystemRoot%\System32\drivers.
    4. sc.exe create @VENDOR_SERVICE@ type= kernel start= demand error= normal
           binPath= System32\drivers\@VENDOR_SERVICE@.sys depend= @SERVICE_NAME@
       'depend= @SERVICE_NAME@' makes the service control manager start wanlayer first; the driver
       still waits up to 10 s for \Device\WanLayer in DriverEntry.
    5. sc.exe start @VENDOR_SERVICE@, and shows its state.

    While @VENDOR_SERVICE@ runs it holds a reference on \Device\WanLayer, which keeps wanlayer.sys
    loaded: stop @VENDOR_SERVICE@ (uninstall-@VENDOR_SERVICE@.ps1) before removing wanlayer.

    Stamped by `cargo xtask package` for @ARCH@, wanlayer @VERSION@.
#>
[CmdletBinding()]
param()

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$VendorService = '@VENDOR_SERVICE@'
$DisplayName = '@VENDOR_DISPLAY_NAME@'
$FilterService = '@SERVICE_NAME@'
$PackageArch = '@ARCH@'
$Here = $PSScriptRoot
$Image = Join-Path $Here "$VendorService.sys"
$Target = Join-Path $env:SystemRoot "System32\drivers\$VendorService.sys"

function Step([string]$Text) { Write-Host "==> $Text" -ForegroundColor Cyan }
function Fail([string]$Text) { Write-Host "install-${VendorService}: $Text" -ForegroundColor Red; exit 1 }

Step 'Checking the package and the wanlayer filter'
foreach ($file in @("$VendorService.sys", "$VendorService.cat")) {
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
if (-not (Get-Service -Name $FilterService -ErrorAction SilentlyContinue)) {
    Fail "the wanlayer filter (service '$FilterService') is not installed: run .\install.ps1 first."
}

Step "Checking the signature of $VendorService.sys"
$signature = Get-AuthenticodeSignature -FilePath $Image
Write-Host "    $($signature.Status): $($signature.SignerCertificate.Subject)"
if ($signature.Status -ne 'Valid') {
    Fail ("the embedded signature is not trusted ($($signature.Status)): run .\install.ps1 first " +
        '(it trusts wanlayer-test.cer and turns test signing on).')
}

Step "Copying $VendorService.sys to $Target"
if (Get-Service -Name $VendorService -ErrorAction SilentlyContinue) {
    Fail "the service '$VendorService' exists already: run .\uninstall-$VendorService.ps1 first."
}
Copy-Item -Path $Image -Destination $Target -Force

Step "Creating the kernel service: sc.exe create $VendorService type= kernel start= demand depend= $FilterService"
& sc.exe create $VendorService type= kernel start= demand error= normal binPath= "System32\drivers\$VendorService.sys" depend= $FilterService DisplayName= $DisplayName | Out-Host
if ($LASTEXITCODE -ne 0) { Fail "sc.exe create failed (exit code $LASTEXITCODE)." }

Step "Starting $VendorService"
& sc.exe start $VendorService | Out-Host
if ($LASTEXITCODE -ne 0) {
    Fail ("sc.exe start failed (exit code $LASTEXITCODE). The driver's DbgPrintEx output (component IHVNETWORK) " +
        'says why; a signature problem shows in Event Viewer > Microsoft > Windows > CodeIntegrity > Operational.')
}
& sc.exe query $VendorService | Out-Host
