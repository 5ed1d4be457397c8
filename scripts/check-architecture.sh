#!/usr/bin/env bash
# Architecture invariants that the dependency graph shows (ARCHITECTURE.md says why each holds).
# Run by scripts/test.sh; prints what it checked and fails on the first broken invariant.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "architecture: $*" >&2; exit 1; }
deps() { cargo tree --locked -e normal --prefix none -p "$1" | awk '{print $1}' | sort -u; }

# No server library links the device sync client; only the `shikong` binary does (device commands).
for lib in shikong-http shikong-sync-engine shikong-gazetteer shikong-ingest shikong-store shikong-auth shikong-tileserver; do
  deps "$lib" | grep -qx shikong-sync-client && fail "$lib depends on shikong-sync-client"
done
# The app core is UI-free: no Dioxus, Tauri or webview crates.
gui=$(deps shikong-app-core | grep -E '^(dioxus|tauri|wry|tao|webkit2gtk)' || true)
[ -z "$gui" ] || fail "shikong-app-core depends on GUI crates: $gui"
# The mobile app is views over the app core.
deps shikong-mobile | grep -qx shikong-app-core || fail "shikong-mobile does not use shikong-app-core"
# The client crates read server answers through the protocol types.
for c in shikong-sync-client shikong-app-core; do
  deps "$c" | grep -qx shikong-protocol || fail "$c does not use shikong-protocol"
done
echo "architecture invariants hold (server libraries without the sync client, UI-free app core)"
