; Inno Setup script for the Windows installer of Shoplist (Inno Setup 6.3 or newer).
; Packs the PyInstaller bundle dist\shoplist\ (packaging\build-windows.ps1 builds it, then runs
;     ISCC.exe /DAppVersion=0.1.0 /DBundleDir=..\..\dist\shoplist packaging\windows\shoplist.iss
; ) into dist\shoplist-<version>-windows-x64-setup.exe.
;
; What it does: installs the bundle per user (no administrator needed; an administrator may choose an
; install for all users), a Start menu entry for the window, an optional "start the sync service at login"
; task (the HKCU Run value the tray menu's own "Start at login" also writes, see sync_service/autostart.py),
; and an uninstaller. The lists live in %LOCALAPPDATA%\shoplist, which neither setup nor the uninstaller
; touches: uninstalling keeps every user's data.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef BundleDir
  #define BundleDir "..\..\dist\shoplist"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif

[Setup]
; A fixed AppId ties upgrades and the uninstaller to this application: never change it.
AppId={{6B3F2A41-8C1D-4E57-9A0B-5D2C7E9F1A34}
AppName=Shoplist
AppVersion={#AppVersion}
AppVerName=Shoplist {#AppVersion}
AppPublisher=Shoplist
DefaultDirName={autopf}\Shoplist
DefaultGroupName=Shoplist
DisableProgramGroupPage=yes
; Per-user by default: {autopf} is then %LOCALAPPDATA%\Programs and the Run value goes to this user's hive.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir={#OutputDir}
OutputBaseFilename=shoplist-{#AppVersion}-windows-x64-setup
SetupIconFile=..\..\icons\shoplist.ico
UninstallDisplayIcon={app}\shoplist-desktop.exe
UninstallDisplayName=Shoplist
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
; Upgrades and the uninstaller close running Shoplist programs (the window, the tray service and the
; store's PostgreSQL, which runs from {app}) through the Restart Manager, so their files can be replaced.
CloseApplications=force
RestartApplications=no
; Code signing hook (optional): define a sign tool named, say, "shoplistsign" on the ISCC command line and
; pass its name, e.g.
;   ISCC.exe "/Sshoplistsign=signtool.exe sign /fd sha256 /tr http://timestamp.digicert.com /td sha256 $f"
;            /DSignTool=shoplistsign ...
; Setup and the uninstaller are then signed; build-windows.ps1 signs the bundle's executables before.
#ifdef SignTool
SignTool={#SignTool}
SignedUninstaller=yes
#endif

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "autostart"; Description: "Start the Shoplist sync service when I log in"; GroupDescription: "Sync:"; Flags: unchecked
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; The whole onedir bundle: the four programs and the shared _internal\ folder (Python, Qt, PostgreSQL).
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\Shoplist"; Filename: "{app}\shoplist-desktop.exe"; Comment: "Shared shopping lists"
Name: "{group}\Shoplist sync"; Filename: "{app}\shoplist-sync.exe"; Comment: "The background sync service (tray icon)"
Name: "{group}\{cm:UninstallProgram,Shoplist}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\Shoplist"; Filename: "{app}\shoplist-desktop.exe"; Tasks: desktopicon

[Registry]
; The value name and command match sync_service/autostart.py (ENTRY_NAME "shoplist-sync" under
; Software\Microsoft\Windows\CurrentVersion\Run), so the tray menu shows the same setting and can turn it
; off. The uninstaller deletes the value: an uninstalled program must not be started at login.
Root: HKCU; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: string; ValueName: "shoplist-sync"; ValueData: """{app}\shoplist-sync.exe"""; Tasks: autostart; Flags: uninsdeletevalue

[Run]
Filename: "{app}\shoplist-desktop.exe"; Description: "{cm:LaunchProgram,Shoplist}"; Flags: nowait postinstall skipifsilent
Filename: "{app}\shoplist-sync.exe"; Description: "Start the sync service now"; Tasks: autostart; Flags: nowait postinstall skipifsilent

; No [UninstallDelete] section: the uninstaller removes only the files setup installed, never the lists
; in %LOCALAPPDATA%\shoplist.
