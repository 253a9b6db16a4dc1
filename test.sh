#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the tests need if it is missing, then `dotnet test`.
# The tests start their own servers (wayback, moto_server for S3) on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")"

sudo_cmd=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo_cmd="sudo"

missing=()
command -v sqlite3 >/dev/null || missing+=(sqlite3)
ldconfig -p 2>/dev/null | grep -q 'liblz4.so.1 ' || missing+=(liblz4-1)
command -v chromium >/dev/null || missing+=(chromium)
# ./wayback links its native build with clang (PublishedCliTests publishes it as a newcomer would).
command -v clang >/dev/null || compgen -c clang- | grep -E '^clang-[0-9]+$' >/dev/null || missing+=(clang)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
if ! command -v moto_server >/dev/null; then
  echo "test.sh: installing moto (S3 API server for the storage tests)"
  python3 -m pip install --quiet 'moto[server]'
fi

if [ ! -d ../shared/testdata/ltx ] && [ -z "${WAYBACK_TESTDATA:-}" ]; then
  echo "test.sh: ../shared/testdata/ltx not found; clone the project next to shared/ or set WAYBACK_TESTDATA" >&2
  exit 1
fi

# A test that hangs is stopped with a mini dump after 15 minutes (no single test takes near that), so a stuck
# run fails well inside CI's 90 minutes and says which test it was.
dotnet test Wayback.slnx -c Release --blame-hang-timeout 15m --blame-hang-dump-type mini "$@"
