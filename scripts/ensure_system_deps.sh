#!/usr/bin/env bash
# System libraries that pip cannot install. open3d's wheel links against libusb-1.0 (Debian's
# libusb-1.0-0). Installs it with apt where it is missing and we may; otherwise says what to do.
set -euo pipefail

if [ "${1:-}" = "--browser" ]; then  # Debian's chromium, for the report's headless browser test
  command -v chromium >/dev/null 2>&1 && exit 0
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "reshoot: installing Debian's chromium (for the report's browser test)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    command -v chromium >/dev/null 2>&1 && exit 0
  fi
  exit 1
fi

have_libusb() { ldconfig -p 2>/dev/null | grep -q 'libusb-1\.0\.so\.0'; }

if have_libusb; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "reshoot: installing Debian's libusb-1.0-0 (needed by open3d)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 >/dev/null
  have_libusb && exit 0
fi
cat >&2 <<'MSG'
reshoot: open3d needs the system library libusb-1.0, which is missing and could not be installed
automatically (apt-get needs root). Install it, then run make again:
    Debian/Ubuntu:  sudo apt-get install libusb-1.0-0
    Fedora:         sudo dnf install libusbx
    macOS:         brew install libusb
MSG
exit 1
