#!/bin/sh
# `pnpm start`: builds the admin console when none is built yet (about a minute, silent without these
# lines), then runs the server in this process's place. A failed build stops here, plainly.
set -eu
cd "$(dirname "$0")/.."
if [ ! -f web/build/index.html ]; then
  echo "Building the admin console into web/build (once; about a minute)..."
  started=$(date +%s)
  if ! pnpm --filter @tessera/web build; then
    echo "Tessera failed to start: building the admin console failed (its output is above). Fix the cause, or run \`pnpm build\` to retry it alone." >&2
    exit 1
  fi
  if [ ! -f web/build/index.html ]; then
    echo "Tessera failed to start: the admin console build ended without writing web/build/index.html." >&2
    exit 1
  fi
  echo "Admin console built in $(( $(date +%s) - started ))s."
fi
exec tsx server/src/main.ts
