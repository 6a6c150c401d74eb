#!/usr/bin/env bash
# Installs the system packages the test suite needs beyond Python: Xvfb and trayer (a real X server with a
# system tray, for the tray service's test and screenshot), xwininfo (to see its windows) and the X11
# libraries Qt's xcb platform plugin loads. Quick and silent when they are already there; installs with
# apt-get only when running as root on a Debian-like system, and otherwise says what is missing (the tests
# that need it are then skipped with that reason).
set -euo pipefail

missing=()
for pair in Xvfb:xvfb trayer:trayer xwininfo:x11-utils; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
libraries=$(/sbin/ldconfig -p 2>/dev/null || true)
for pair in libxcb-cursor.so.0:libxcb-cursor0 libxcb-icccm.so.4:libxcb-icccm4 \
  libxcb-keysyms.so.1:libxcb-keysyms1 libxcb-image.so.0:libxcb-image0 \
  libxcb-render-util.so.0:libxcb-render-util0 libxcb-shape.so.0:libxcb-shape0 \
  libxcb-randr.so.0:libxcb-randr0 libxcb-xkb.so.1:libxcb-xkb1 libxkbcommon-x11.so.0:libxkbcommon-x11-0; do
  grep -q "${pair%%:*}" <<<"$libraries" || missing+=("${pair#*:}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system packages: ${missing[*]} ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "Not installing ${missing[*]} (needs root and apt-get); the real-tray test will be skipped." >&2
fi
