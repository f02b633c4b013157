#!/bin/sh
# Copies the agent's baresip config into a writable directory, puts the password into the account
# line and runs baresip in the foreground. Extra arguments go to baresip (e.g. -s for a SIP trace).
set -eu
: "${AGENT_PASSWORD:?set AGENT_PASSWORD (the same value as CLICKTOCALL_AGENT_1001_PASSWORD)}"
case "$AGENT_PASSWORD" in
  *[!A-Za-z0-9._~-]*) echo "AGENT_PASSWORD: use letters, digits and . _ ~ - only" >&2; exit 1 ;;
esac
src="${AGENT_CONFIG_DIR:-/etc/baresip-agent}"   # overridable for tests outside Docker
dir="$HOME/.baresip"
mkdir -p "$dir"
cp "$src/config" "$dir/config"
sed "s|@AGENT_PASSWORD@|$AGENT_PASSWORD|" "$src/accounts" > "$dir/accounts"
exec baresip -f "$dir" "$@"
