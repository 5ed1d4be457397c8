#!/usr/bin/env bash
# Architecture invariants that the dependency graph shows (ARCHITECTURE.md says why each holds).
# Run by scripts/test.sh; prints what it checked and fails on the first broken invariant.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "architecture: $*" >&2; exit 1; }
# The list is read whole before grep looks at it: `cargo tree | grep -q` would let grep exit early
# and, under pipefail, turn cargo's broken pipe into a false "not found".
deps() { local out; out=$(cargo tree --locked -e normal --prefix none -p "$1"); awk '{print $1}' <<<"$out" | sort -u; }
has() { local list; list=$(deps "$1"); grep -qx "$2" <<<"$list"; }

# No server library links the device sync client; only the `shikong` binary does (device commands).
for lib in shikong-http shikong-sync-engine shikong-gazetteer shikong-ingest shikong-store shikong-auth shikong-tileserver; do
  if has "$lib" shikong-sync-client; then fail "$lib depends on shikong-sync-client"; fi
done
# MQTT is wired into the server, not into HTTP: shikong-mqtt stays free of the HTTP crate.
if has shikong-mqtt shikong-http; then fail "shikong-mqtt depends on shikong-http"; fi
# The app core is UI-free: no Dioxus, Tauri or webview crates.
core=$(deps shikong-app-core)
gui=$(grep -E '^(dioxus|tauri|wry|tao|webkit2gtk)' <<<"$core" || true)
[ -z "$gui" ] || fail "shikong-app-core depends on GUI crates: $gui"
# The mobile app is views over the app core.
has shikong-mobile shikong-app-core || fail "shikong-mobile does not use shikong-app-core"
# Tauri stays in the desktop app, which is views over the app core.
for c in shikong-mobile shikong-server shikong-sync-client; do
  if has "$c" tauri; then fail "$c depends on tauri (only shikong-desktop may)"; fi
done
has shikong-desktop shikong-app-core || fail "shikong-desktop does not use shikong-app-core"
# The client crates read server answers through the protocol types.
for c in shikong-sync-client shikong-app-core; do
  has "$c" shikong-protocol || fail "$c does not use shikong-protocol"
done
echo "architecture invariants hold (server libraries without the sync client, UI-free app core, Tauri only in the desktop app)"
