#!/usr/bin/env bash
# The console's browser tests (tests/api/test_console.py) drive the distribution's headless Chromium, never a
# browser a test tool downloads: its headless shell (the same Blink without the full browser that
# `chromium --headless` starts, a third of the CPU), or a full chromium when that is all there is. Installs the
# shell (and CJK fonts, so Chinese pages render) from the distribution's packages when it is missing and this
# user can; otherwise says so and leaves the tests to skip, or to the full chromium.
set -euo pipefail

if command -v chromium-headless-shell >/dev/null 2>&1; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
        echo "install-chromium: no chromium on PATH and no root apt-get here; the console's browser tests will" \
            "skip (install the distribution's chromium-headless-shell package to run them)" >&2
    fi
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
packages=(chromium-headless-shell fonts-noto-cjk)
# The package lists may be current already: try without the update (some 20 s) first.
if ! apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null 2>&1 &&
    ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; }; then
    echo "install-chromium: apt-get could not install chromium-headless-shell; the console's browser tests" \
        "will use a full chromium if there is one, or skip" >&2
fi
exit 0
