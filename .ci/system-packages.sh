#!/usr/bin/env bash
# Installs the system packages the test suite needs beyond Python: Xvfb and trayer (a real X server with a
# system tray for the tray service's test and screenshot) and xwd (to capture it). Quick and silent when
# they are already there; installs with apt-get only when running as root on a Debian-like system, and
# otherwise says what is missing (the tests that need it are then skipped with that reason).
set -euo pipefail

missing=()
for pair in Xvfb:xvfb trayer:trayer xwd:x11-apps; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
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
