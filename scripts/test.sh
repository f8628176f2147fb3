#!/usr/bin/env bash
# The whole test suite: generated files and migrations up to date, strict type-check, the server
# suite on embedded PGlite, the same suite on PostgreSQL, the SDK's tests, and the admin console's
# type-check, unit/component tests and browser tests (Debian chromium, installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "generated files and migrations"
pnpm check:generated

step "type-check"
pnpm typecheck

step "server tests on PGlite"
(cd server && TEST_DATABASE_URL= pnpm exec vitest run)

step "SDK tests (against an in-process server, and offline files)"
(cd sdk && TEST_DATABASE_URL= pnpm exec vitest run)

# PostgreSQL: TEST_DATABASE_URL, or the local server these machines run. Each test file creates and
# drops its own database there. CI must have it; elsewhere it is skipped with a note.
pg_url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if node -e "const c=new (require('pg').Client)({connectionString:process.argv[1],connectionTimeoutMillis:3000});c.connect().then(()=>c.end()).catch(()=>process.exit(1))" "$pg_url" 2>/dev/null; then
  step "server tests on PostgreSQL"
  (cd server && TEST_DATABASE_URL="$pg_url" pnpm exec vitest run)
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL is not reachable at $pg_url, and CI needs it" >&2
  exit 1
else
  step "PostgreSQL not reachable at $pg_url: skipped the PostgreSQL pass"
fi

step "admin console: type-check, unit and component tests"
pnpm --filter @tessera/web check
pnpm --filter @tessera/web test

step "admin console: browser tests in headless Chromium"
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  elif [ "${CI:-}" = "true" ]; then
    echo "Chromium is missing and cannot be installed here (needs root and apt-get)" >&2
    exit 1
  fi
fi
if [ -x /usr/bin/chromium ]; then
  pnpm --filter @tessera/web test:e2e
else
  step "Chromium not installed (apt-get install chromium): skipped the browser tests"
fi
