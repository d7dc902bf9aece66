#!/usr/bin/env bash
# System packages the test suite uses beyond Python and npm: Debian's Chromium (the dashboard's browser tests, driven
# by Playwright, which must never download a browser of its own) and pgvector for the system's PostgreSQL 15
# (store.index on PostgreSQL). Idempotent. Needs root for apt; without it, says what is missing and goes on (the
# browser tests then skip, naming Chromium).
set -euo pipefail
cd "$(dirname "$0")"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1
  fi
}

if ! command -v chromium >/dev/null; then
  echo "system-deps: installing Debian's chromium (browser tests)"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q chromium >/dev/null 2>&1; then
    as_root apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null 2>&1 || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q chromium >/dev/null \
      || echo "system-deps: could not install chromium (needs root and apt); the browser tests will skip"
  fi
fi

if [ -x /usr/lib/postgresql/15/bin/pg_config ] && [ ! -f "$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)/vector.so" ]; then
  echo "system-deps: installing pgvector for PostgreSQL 15 (store.index on PostgreSQL; about a minute)"
  as_root bash ./install_pgvector.sh || echo "system-deps: could not install pgvector (needs root and apt); store.index tests on PostgreSQL will fail"
fi
