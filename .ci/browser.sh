#!/usr/bin/env bash
# Browser tests drive Debian's chromium (its own browser download cannot work here).
set -u
if command -v chromium >/dev/null 2>&1; then echo "browser: chromium present"; exit 0; fi
echo "browser: installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null && echo "browser: chromium installed"
