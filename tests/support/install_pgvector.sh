#!/usr/bin/env bash
# pgvector for the system's PostgreSQL 15, which the PostgreSQL tests' throwaway server runs (store.index on
# PostgreSQL: LangGraph's Postgres store runs CREATE EXTENSION vector). Idempotent; run as root.
#
# Debian bookworm has no pgvector package for PostgreSQL 15, so when apt cannot install one this builds Debian's
# own pgvector source package (from the next release's sources, fetched and signature-checked by apt through the
# mirror this machine already uses) against postgresql-server-dev-15.
set -euo pipefail

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
SOURCE_SUITE=${PGVECTOR_SOURCE_SUITE:-trixie}

if [ -f "$("$PG_CONFIG" --pkglibdir)/vector.so" ]; then
  exit 0
fi
if apt-get install -y -q postgresql-15-pgvector >/dev/null 2>&1; then
  exit 0
fi
apt-get install -y -q postgresql-server-dev-15 dpkg-dev make gcc >/dev/null

work=$(mktemp -d)
chmod 755 "$work"  # apt downloads as the _apt user
trap 'rm -rf "$work"' EXIT
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
fi
cat >"$work/pgvector.sources" <<SOURCES
Types: deb-src
URIs: $mirror
Suites: $SOURCE_SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
mkdir -p "$work/lists/partial"
apt_src=(-o "Dir::Etc::sourcelist=/dev/null" -o "Dir::Etc::sourceparts=$work" -o "Dir::State::Lists=$work/lists")
apt-get "${apt_src[@]}" update -q >/dev/null
(cd "$work" && apt-get "${apt_src[@]}" source -q pgvector >/dev/null)
# OPTFLAGS="": pgvector's default adds -march=native, which would tie the build to this CPU.
make -C "$work"/pgvector-*/ PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null
make -C "$work"/pgvector-*/ PG_CONFIG="$PG_CONFIG" install >/dev/null
echo "pgvector installed into $("$PG_CONFIG" --pkglibdir)"
