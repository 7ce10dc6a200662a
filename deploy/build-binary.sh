#!/usr/bin/env bash
# The binary step of the Containerfile, also run by CI (which has no
# container engine): a release build of `iptviz`, copied to OUT/iptviz.
#
# usage: deploy/build-binary.sh OUT_DIR
set -euo pipefail
out="${1:?usage: deploy/build-binary.sh OUT_DIR}"
cd "$(dirname "$0")/.."
cargo build --release --locked --bin iptviz
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$out"
install -m 0755 "$target/release/iptviz" "$out/iptviz"
"$out/iptviz" --version
