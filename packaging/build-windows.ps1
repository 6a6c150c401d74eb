# Builds the Windows bundle (dist\shoplist\) and the installer (dist\shoplist-VERSION-windows-x64-setup.exe)
# from a checkout, in one command, on Windows 10 or newer with Python 3.11+ and Inno Setup 6.3+:
#     powershell -ExecutionPolicy Bypass -File packaging\build-windows.ps1
# Parameters:
#   -Python      the Python to create build\venv with (default: py -3.11 if present, else python)
#   -SignTool    optional: a command that signs one file, with $f where the file's path goes, e.g.
#                'signtool.exe sign /fd sha256 /tr http://timestamp.digicert.com /td sha256 "$f"'.
#                When given, the four executables are signed before packing, and so are setup and the
#                uninstaller (passed to Inno Setup as its sign tool).
param(
    [string]$Python = "",
    [string]$SignTool = ""
)
$ErrorActionPreference = "Stop"
Set-Location (Split-Path -Parent $PSScriptRoot)

if (-not (Test-Path "desktop\app.py")) {
    throw "desktop\app.py is missing: the bundle ships the window (shoplist-desktop = desktop.app:main) and cannot be built without it."
}
$Version = (Select-String -Path pyproject.toml -Pattern '^version = "(.*)"').Matches[0].Groups[1].Value

if (-not (Test-Path "build\venv\Scripts\python.exe")) {
    if (-not $Python) { $Python = if (Get-Command py -ErrorAction SilentlyContinue) { "py -3.11" } else { "python" } }
    Write-Host "== creating build\venv with $Python"
    Invoke-Expression "$Python -m venv build\venv"
    if ($LASTEXITCODE -ne 0) { throw "could not create build\venv" }
}
$VenvPython = "build\venv\Scripts\python.exe"
Write-Host "== installing shoplist[package] into build\venv"
& $VenvPython -m pip install --quiet --disable-pip-version-check ".[package]"
if ($LASTEXITCODE -ne 0) { throw "pip install failed" }

Write-Host "== PyInstaller (dist\shoplist\)"
& "build\venv\Scripts\pyinstaller.exe" --noconfirm --log-level WARN --distpath dist --workpath build\pyinstaller packaging\shoplist.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }
foreach ($program in "shoplist", "shoplist-sync", "shoplist-desktop", "shoplist-server") {
    if (-not (Test-Path "dist\shoplist\$program.exe")) { throw "dist\shoplist\$program.exe was not built" }
}

if ($SignTool) {
    foreach ($program in "shoplist", "shoplist-sync", "shoplist-desktop", "shoplist-server") {
        $command = $SignTool.Replace('$f', (Resolve-Path "dist\shoplist\$program.exe"))
        Write-Host "== signing $program.exe"
        Invoke-Expression $command
        if ($LASTEXITCODE -ne 0) { throw "signing $program.exe failed" }
    }
}

$Iscc = (Get-Command ISCC.exe -ErrorAction SilentlyContinue).Source
if (-not $Iscc) { $Iscc = Join-Path ${env:ProgramFiles(x86)} "Inno Setup 6\ISCC.exe" }
if (-not (Test-Path $Iscc)) { throw "Inno Setup's ISCC.exe was not found (install Inno Setup 6.3 or newer)" }
$IsccArguments = @("/Qp", "/DAppVersion=$Version", "/DBundleDir=..\..\dist\shoplist", "/DOutputDir=..\..\dist")
if ($SignTool) {
    $IsccArguments += @("/Sshoplistsign=$($SignTool.Replace('"$f"', '$f'))", "/DSignTool=shoplistsign")
}
Write-Host "== Inno Setup"
& $Iscc @IsccArguments "packaging\windows\shoplist.iss"
if ($LASTEXITCODE -ne 0) { throw "Inno Setup failed" }
Get-ChildItem "dist\shoplist-$Version-windows-x64-setup.exe" | Format-Table Name, Length
