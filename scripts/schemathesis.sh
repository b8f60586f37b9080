#!/usr/bin/env bash
# `make schemathesis`: property-based tests of the real server against the OpenAPI document it
# publishes. Starts the debug binary on a free loopback port with a fresh SQLite database in a
# temporary directory, waits for /readyz, runs Schemathesis signed in as the bootstrap admin
# (POST /auth/login, see schemathesis_hooks.py) over every operation with its default checks,
# and stops the server whatever happens.
#
# The run happens inside a private network namespace (only loopback): fuzzed bodies contain
# arbitrary URLs (e.g. an external deployment's `endpoint_url`, which the server then probes),
# and no such request may leave this machine.
#
# Knobs: SCHEMATHESIS_MAX_EXAMPLES (per operation and phase), SCHEMATHESIS_SEED, VENV.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${INVENTIV_SCHEMATHESIS_NETNS:-}" ]]; then
  if ! unshare --net true 2>/dev/null; then
    echo "schemathesis: cannot create a private network namespace (unshare --net; needs root)" >&2
    exit 1
  fi
  exec env INVENTIV_SCHEMATHESIS_NETNS=1 unshare --net bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi

VENV=${VENV:-.venv}
BIN=${CARGO_TARGET_DIR:-target}/debug/inventiv-server
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-50}

work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
admin_email=admin@inventiv.local
admin_password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')

# The `test` environment: cheap argon2 (the run signs in again after every revoked session) and
# a login rate limit high enough for a fuzzer hammering /auth/login from one address.
INVENTIV_ENV=test \
INVENTIV__SERVER__PORT=$port \
INVENTIV__SERVER__PUBLIC_URL=$base \
INVENTIV__SERVER__DATA_DIR=$work \
INVENTIV__DATABASE__URL="sqlite://$work/inventiv.db?mode=rwc" \
INVENTIV__BOOTSTRAP__ADMIN_EMAIL=$admin_email \
INVENTIV__BOOTSTRAP__ADMIN_PASSWORD=$admin_password \
INVENTIV__RATE_LIMIT__LOGIN_PER_MINUTE=1000000 \
  "$BIN" serve >"$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 300); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null

# scripts/schemathesis_hooks.py signs in as the admin (and again whenever the fuzzer ends
# that session) and sends its bearer token on every request.
export SCHEMATHESIS_BASE_URL=$base SCHEMATHESIS_ADMIN_EMAIL=$admin_email SCHEMATHESIS_ADMIN_PASSWORD=$admin_password
export SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH=scripts${PYTHONPATH:+:$PYTHONPATH}
export SCHEMATHESIS_CACHE_DIR=${CARGO_TARGET_DIR:-target}/schemathesis
status=0
"$VENV/bin/schemathesis" --config-file scripts/schemathesis.toml run "$base/openapi.json" \
  --max-examples "$MAX_EXAMPLES" ${SCHEMATHESIS_SEED:+--seed "$SCHEMATHESIS_SEED"} \
  "$@" || status=$?
if [[ $status -ne 0 ]]; then
  echo "--- server log (errors) ---"
  grep -iE 'error|panic' "$work/server.log" | tail -50 || true
fi
exit $status
