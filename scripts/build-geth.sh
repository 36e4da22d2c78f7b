#!/usr/bin/env bash
# Builds geth v1.13.15 (the last release that seals Clique proof-of-authority blocks) from the Go module proxy
# into .tools/bin/geth, the engine of the multi-node network tests (tests/network). Without Go, or when the
# build fails, it says why, records the reason in .tools/geth.unavailable (the skipped tests show it) and exits
# 0, so `make test` runs everything else; with GETH_REQUIRED=1 (CI, whose run must include the network tests)
# it exits 1 instead.
set -uo pipefail
cd "$(dirname "$0")/.."
VERSION=v1.13.15
TOOLS="$PWD/.tools"
GETH="$TOOLS/bin/geth"
mkdir -p "$TOOLS/bin"

unavailable() {
    echo "$1" >"$TOOLS/geth.unavailable"
    if [[ "${GETH_REQUIRED:-}" == 1 ]]; then
        echo "geth required (GETH_REQUIRED=1) but not available: $1" >&2
        exit 1
    fi
    echo "network tests skipped: $1"
    exit 0
}

if [[ -x "$GETH" ]] && "$GETH" version 2>/dev/null | grep -q "^Version: ${VERSION#v}-"; then
    rm -f "$TOOLS/geth.unavailable"
    exit 0
fi
command -v go >/dev/null || unavailable "no Go toolchain on PATH to build geth $VERSION (https://go.dev/dl/)"
go_version="$(go env GOVERSION)"  # go1.26.8
minor="$(echo "$go_version" | sed -E 's/^go1\.([0-9]+).*/\1/')"
ldflags=""
# Go 1.23 stopped linking packages that reach into the runtime by go:linkname, as geth 1.13's dependencies do;
# the linker flag lifts that check (the known upstream workaround).
if [[ "$minor" =~ ^[0-9]+$ ]] && ((minor > 22)); then
    ldflags="-checklinkname=0"
fi
echo "building geth $VERSION with $go_version into $GETH (a few minutes, once)"
# nice: the build competes with nothing the machine does for a user.
if ! out="$(GOBIN="$TOOLS/bin" nice -n 19 go install -ldflags="$ldflags" \
    "github.com/ethereum/go-ethereum/cmd/geth@$VERSION" 2>&1)"; then
    echo "$out" | tail -20
    unavailable "go install github.com/ethereum/go-ethereum/cmd/geth@$VERSION failed: $(echo "$out" | tail -1)"
fi
rm -f "$TOOLS/geth.unavailable"
"$GETH" version | grep "^Version:"
