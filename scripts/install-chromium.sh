#!/usr/bin/env bash
# The console's browser tests (tests/api/test_console.py) drive the distribution's headless Chromium, never a
# browser a test tool downloads. Installs it (and CJK fonts, so Chinese pages render) from the distribution's
# packages when it is missing and this user can; otherwise says so and leaves the tests to skip.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: no chromium on PATH and no root apt-get here; the console's browser tests will skip" \
        "(install the distribution's chromium package to run them)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null; }; then
    echo "install-chromium: apt-get could not install chromium; the console's browser tests will skip" >&2
fi
exit 0
