#!/usr/bin/env bash
# Retakes the dashboard screenshots in this folder: runs the dashboard tests that take them (real wayback serve,
# agent and writer, Debian's chromium) with WAYBACK_SCREENSHOTS pointing here. Needs what ./test.sh installs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
WAYBACK_SCREENSHOTS="$here" dotnet test tests/Wayback.Dashboard.Tests -c Release \
  --filter "FullyQualifiedName~RestoreEndToEndTests|FullyQualifiedName~SignInTests|FullyQualifiedName~ErrorStateTests|FullyQualifiedName~FaultDisplayTests|FullyQualifiedName~On_a_phone_sized_screen|FullyQualifiedName~PreviewTests|FullyQualifiedName~TieredRetentionDisplayTests"
