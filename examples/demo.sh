#!/usr/bin/env bash
# The air-gapped story end to end, with the real console scripts, in ./demo/.
# Run through `make demo` (which puts .venv/bin on PATH first).
set -euo pipefail

rm -rf demo && mkdir -p demo/provider demo/server-a demo/server-b
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

cd demo/provider
step "Provider: a signing key, the trust file panels ship, a ledger"
show keytool new
show keytool export
show issuer init --name "Acme Hosting"

step "Provider: a license for ispmanager, valid a year, with the dns feature"
LICENSE=$(issuer license create --product ispmanager --days 365 --feature dns --limit domains=100 --customer "Bob's VPS" --json)
LID=$(echo "$LICENSE" | json license_id)
KEY=$(echo "$LICENSE" | json activation_key)
show issuer license show "$LID"
TRUST=$PWD/keys/trusted_keys.json

step "Server A (air-gapped): the customer types the key; the panel prints a request code"
cd ../server-a
CODE=$(verifier request --product ispmanager --key "$KEY" --machine-id server-a)
echo "$CODE"

step "Provider: redeem the request code, hand back the token"
cd ../provider
TOKEN=$(issuer activate "$CODE")
echo "$TOKEN"

step "Server A: install the token and check it offline"
cd ../server-a
echo '$ verifier install "$TOKEN" --product ispmanager --trusted-keys keys/trusted_keys.json --machine-id server-a'
verifier install "$TOKEN" --product ispmanager --trusted-keys "$TRUST" --machine-id server-a
show verifier status --product ispmanager --trusted-keys "$TRUST" --machine-id server-a

step "A tampered token is refused (one character of the claims changed)"
POS=$(( $(echo "$TOKEN" | cut -d. -f1 | wc -c) + 40 ))
if [ "${TOKEN:$POS:1}" = "A" ]; then SWAP=B; else SWAP=A; fi
TAMPERED="${TOKEN:0:$POS}$SWAP${TOKEN:$((POS + 1))}"
verifier install "$TAMPERED" --product ispmanager --trusted-keys "$TRUST" --machine-id server-a || echo "(refused, exit $?)"

step "Server B tries the same key: refused, with the date regeneration becomes possible"
cd ../server-b
CODE_B=$(verifier request --product ispmanager --key "$KEY" --machine-id server-b)
cd ../provider
issuer activate "$CODE_B" || echo "(refused, exit $?)"

step "Server B tries the token copied from A: it belongs to another server"
cd ../server-b
verifier install "$TOKEN" --product ispmanager --trusted-keys "$TRUST" --machine-id server-b || echo "(refused, exit $?)"

step "Provider regenerates the key (old key dies, license is freed)"
cd ../provider
NEWKEY=$(issuer license regenerate "$LID" --json | json activation_key)
echo "new activation key: $NEWKEY"

step "Server B activates with the new key"
cd ../server-b
CODE_B2=$(verifier request --product ispmanager --key "$NEWKEY" --machine-id server-b)
cd ../provider
TOKEN_B=$(issuer activate "$CODE_B2")
cd ../server-b
echo '$ verifier install "$TOKEN_B" --product ispmanager --trusted-keys keys/trusted_keys.json --machine-id server-b'
verifier install "$TOKEN_B" --product ispmanager --trusted-keys "$TRUST" --machine-id server-b
show verifier status --product ispmanager --trusted-keys "$TRUST" --machine-id server-b

step "Server B renews its lease across the air gap (renewal code out, token back in)"
RENEWAL_B=$(verifier renew --offline --product ispmanager --trusted-keys "$TRUST" --machine-id server-b)
echo "$RENEWAL_B"
cd ../provider
RENEWED_B=$(issuer renew "$RENEWAL_B")
cd ../server-b
verifier install "$RENEWED_B" --product ispmanager --trusted-keys "$TRUST" --machine-id server-b

step "Server A's activation was superseded: its renewal is refused"
cd ../server-a
RENEWAL_A=$(verifier renew --offline --product ispmanager --trusted-keys "$TRUST" --machine-id server-a)
cd ../provider
issuer renew "$RENEWAL_A" || echo "(refused, exit $?)"

step "Server A applies the provider's revocation list and stops at once"
issuer revocations export --out ../server-a/revocations.jwt
cd ../server-a
verifier revocations install revocations.jwt --product ispmanager --trusted-keys "$TRUST" --machine-id server-a
verifier status --product ispmanager --trusted-keys "$TRUST" --machine-id server-a || echo "(exit $?)"

step "A second regeneration in the same month is refused"
cd ../provider
issuer license regenerate "$LID" || echo "(refused, exit $?)"

step "The license's history"
show issuer license show "$LID"
