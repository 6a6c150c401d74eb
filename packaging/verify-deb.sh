#!/usr/bin/env bash
# Installs the .deb on this machine, checks it, and removes it again (run as root, on a machine where
# the package is not installed):
#     packaging/verify-deb.sh [DEB] [SCREENSHOT]
# DEB defaults to the newest dist/shoplist_*.deb; SCREENSHOT to docs/screenshots/deb-window.png.
# Steps: dpkg -i; `shoplist --self-test` from /usr/bin; shoplist-desktop under Xvfb, timed from launch to
# its window being mapped, then a screenshot; dpkg -r and dpkg --purge; then it checks that nothing is
# left under /opt or /usr that was not there before, and that the user's data is still there.
# Needs: Xvfb, xwininfo (x11-utils), import (imagemagick).
set -euo pipefail
cd "$(dirname "$0")/.."
DEB=${1:-$(ls -t dist/shoplist_*.deb | head -1)}
SCREENSHOT=${2:-docs/screenshots/deb-window.png}
WORK=$(mktemp -d /tmp/shoplist-verify-XXXXXX)
DISPLAY_NUMBER=:87
[ "$(id -u)" = 0 ] || { echo "verify-deb.sh: run as root (it installs a package)" >&2; exit 1; }
if dpkg -s shoplist >/dev/null 2>&1; then
  echo "verify-deb.sh: shoplist is installed already; remove it first" >&2; exit 1
fi

step() { echo; echo "\$ $*"; }
snapshot() { find /opt /usr -xdev \( -path /usr/share/doc -o -path /usr/lib/python3 \) -prune -o -print \
  2>/dev/null | sort; }

snapshot > "$WORK/before"
step dpkg -i "$DEB"
dpkg -i "$DEB"
step dpkg -s shoplist
dpkg -s shoplist | grep -E '^(Status|Version|Installed-Size|Depends):'
echo "files owned by the package: $(dpkg -L shoplist | wc -l)"
du -sh --apparent-size /opt/shoplist

step shoplist --self-test
command -v shoplist
shoplist --self-test

step "a list for the window to show, written with the CLI (home $WORK/home)"
export SHOPLIST_HOME=$WORK/home
shoplist new Groceries
shoplist add Groceries Milk --needed 2
shoplist add Groceries Eggs --needed 18 --acquired 6
shoplist add Groceries Bread
shoplist store stop   # the window starts the store itself, as after a reboot

step "shoplist-desktop under Xvfb"
Xvfb "$DISPLAY_NUMBER" -screen 0 1024x700x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
xvfb=$!
for _ in $(seq 50); do xwininfo -display "$DISPLAY_NUMBER" -root >/dev/null 2>&1 && break; sleep 0.1; done
viewable_window() {  # the id of a mapped top-level window whose title says Shoplist, if any
  local id
  for id in $(xwininfo -display "$DISPLAY_NUMBER" -root -children 2>/dev/null \
              | awk '/"[^"]*Shoplist/ {print $1}'); do
    # Compare in the shell: `| grep -q` would end the pipe early and trip pipefail.
    [[ "$(xwininfo -display "$DISPLAY_NUMBER" -id "$id")" == *"Map State: IsViewable"* ]] && { echo "$id"; return; }
  done
  return 0  # none yet (a non-zero status would end the script under set -e)
}
desktop=""
trap 'kill "$xvfb" 2>/dev/null || true; [ -z "$desktop" ] || kill "$desktop" 2>/dev/null || true
      shoplist store stop >/dev/null 2>&1 || true' EXIT
start=$(date +%s.%N)
DISPLAY=$DISPLAY_NUMBER shoplist-desktop >"$WORK/desktop.log" 2>&1 &
desktop=$!
window=""
for _ in $(seq 500); do
  window=$(viewable_window)
  [ -n "$window" ] && break
  kill -0 "$desktop" 2>/dev/null || { cat "$WORK/desktop.log"; echo "shoplist-desktop exited" >&2; exit 1; }
  sleep 0.02
done
[ -n "$window" ] || { cat "$WORK/desktop.log"; echo "no Shoplist window within 10 s" >&2; exit 1; }
printf 'cold start to window: %.2f s (load average %s)\n' "$(echo "$(date +%s.%N) - $start" | bc)" \
  "$(cut -d' ' -f1-3 /proc/loadavg)"
xwininfo -display "$DISPLAY_NUMBER" -id "$window" | grep -E 'xwininfo:|Width|Height'
sleep 5  # let the window open the store and paint its lists
mkdir -p "$(dirname "$SCREENSHOT")"
import -display "$DISPLAY_NUMBER" -window "$window" "$SCREENSHOT"
echo "screenshot: $SCREENSHOT"
kill "$desktop"; wait "$desktop" 2>/dev/null || true
desktop=""
shoplist store stop

step dpkg -r shoplist
dpkg -r shoplist
step dpkg --purge shoplist
dpkg --purge shoplist
snapshot > "$WORK/after"
step "diff of /opt and /usr before install and after purge"
if diff "$WORK/before" "$WORK/after"; then echo "(no difference)"; else echo "left behind!" >&2; exit 1; fi
step "the user's data is untouched"
ls "$WORK/home"
test -f "$WORK/home/postgres/PG_VERSION" && echo "home $WORK/home still holds its store"
