#!/usr/bin/env bash
# Writes what the Debian package installs beside the binary (man pages,
# shell completions) into target/deb-assets/, from the built binary, for
# `cargo deb --no-build` (see [package.metadata.deb] in Cargo.toml).
#
# usage: deploy/deb-assets.sh [IPTVIZ_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-${CARGO_TARGET_DIR:-target}/release/iptviz}"
out=target/deb-assets
rm -rf "$out"
mkdir -p "$out/man" "$out/completions"
"$bin" manpages "$out/man" >/dev/null
"$bin" completions bash > "$out/completions/iptviz.bash"
"$bin" completions zsh > "$out/completions/_iptviz"
"$bin" completions fish > "$out/completions/iptviz.fish"
ls "$out/man" "$out/completions"
