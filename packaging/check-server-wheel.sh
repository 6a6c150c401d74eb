#!/usr/bin/env bash
# Checks an installed shoplist-server (from the wheel): runs a local 3-node ring with one proxy, waits for
# its JSON ready line (proxies with their CurveZMQ keys), asks the proxy for the ring's status over Curve,
# and stops the ring with SIGTERM.
#     packaging/check-server-wheel.sh [PATH-TO-shoplist-server]
set -euo pipefail
SERVER=${1:-shoplist-server}
DATA=$(mktemp -d /tmp/shoplist-ring-XXXXXX)
# Run from outside any checkout: the nodes run as `python -m server.cli`, which would import a
# checkout in the current directory instead of the installed wheel.
cd "$DATA"
"$SERVER" --help | head -1
coproc RING { exec "$SERVER" cluster --nodes 3 --proxies 1 --data "$DATA"; }
ring=$RING_PID
trap 'kill "$ring" 2>/dev/null || true' EXIT
if ! read -r -t 180 ready <&"${RING[0]}"; then
  echo "check-server-wheel.sh: no ready line within 180 s" >&2; exit 1
fi
echo "ready line: $ready"
proxy=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["proxies"][0])' "$ready")
# The ring made its keys in $DATA/keys; its admin key is a member key, so the nodes answer status too.
SHOPLIST_SERVER_KEY="$DATA/keys/admin.key_secret" "$SERVER" status --endpoint "$proxy" --timeout 5
kill -TERM "$ring"
wait "$ring" || true
echo "ring stopped; data in $DATA"
rm -rf "$DATA"
