#!/usr/bin/env bash
# The online story on loopback: a license server, the reference panel activating
# itself by IP, a manual online activation and a refusal. Run via `make demo-online`.
set -euo pipefail

ROOT=$PWD
rm -rf demo-online && mkdir -p demo-online/provider demo-online/panel demo-online/other
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
fetch() { python3 -c "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())" "$1"; }
wait_for() { for _ in $(seq 100); do fetch "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer from $1"; exit 1; }
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT

cd demo-online/provider
step "Provider: keys, ledger, and a license assigned to this server's address (127.0.0.1)"
keytool new >/dev/null && keytool export >/dev/null && issuer init --name "Acme Hosting" >/dev/null
show issuer license create --product ispmanager --ip 127.0.0.1 --feature dns --days 365
TRUST=$PWD/keys/trusted_keys.json

step "Provider: start the license server (loopback callbacks allowed for this demo)"
PORT=$(free_port)
issuer serve --port "$PORT" --allow-private-callbacks > server.log 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$PORT/v1/health"
show fetch "http://127.0.0.1:$PORT/v1/health"

step "Panel: starts, finds no token, activates itself automatically (the server calls it back)"
cd ../panel
PANEL_PORT=$(free_port)
python "$ROOT/examples/panel/panel.py" --product ispmanager --trusted-keys "$TRUST" \
    --license-server "http://127.0.0.1:$PORT" --port "$PANEL_PORT" --machine-id panel-box > panel.log 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$PANEL_PORT/"
sleep 0.5
cat panel.log
show fetch "http://127.0.0.1:$PANEL_PORT/" | grep -E "<dd|class=\"message" | sed 's/<[^>]*>/ /g'

step "Another server: manual online activation with a key"
cd ../provider
KEY=$(issuer license create --product ispmanager --feature mail --json | json activation_key)
cd ../other
show verifier activate --server "http://127.0.0.1:$PORT" --product ispmanager --trusted-keys "$TRUST" --key "$KEY" --machine-id box-b
show verifier status --product ispmanager --trusted-keys "$TRUST" --machine-id box-b

step "A third server tries the same key: refused, with the date regeneration becomes possible"
verifier activate --server "http://127.0.0.1:$PORT" --product ispmanager --trusted-keys "$TRUST" --key "$KEY" \
    --machine-id box-c --store c.token || echo "(refused, exit $?)"
