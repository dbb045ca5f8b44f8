#!/bin/sh
# Install Debian's Chromium and ChromeDriver for the browser tests in tests/browser.
#
# The tests drive /usr/bin/chromium through Playwright and never download a browser of
# their own, so this script is the only place a browser gets installed. It does nothing
# when /usr/bin/chromium already exists. It needs root, or sudo when run as another user.
set -eu

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser.sh: apt-get not found. Install Chromium at /usr/bin/chromium" \
        "with your system's package manager, then rerun the tests." >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "install-browser.sh: installing Chromium needs root, and sudo was not found." \
        "Run this script as root." >&2
    exit 1
fi

echo "Installing chromium and chromium-driver with apt-get"
$as_root apt-get update -qq
$as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq chromium chromium-driver >/dev/null

if [ ! -x /usr/bin/chromium ]; then
    echo "install-browser.sh: apt-get finished, but /usr/bin/chromium is missing." >&2
    exit 1
fi
/usr/bin/chromium --version 2>/dev/null || true
