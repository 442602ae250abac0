#!/usr/bin/env bash
# Installs the system tools the tests and the drill use, when they are missing: PostgreSQL (server, pg_dump,
# pg_restore), zstd and age (and, for the tests, the AWS CLI). Uses apt-get when run as root on Debian/Ubuntu; otherwise says what to install.
set -euo pipefail
missing=()
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v age >/dev/null 2>&1 || missing+=(age)
# --for-tests: also the AWS CLI, for the runbook test that restores with stock tools only (aws s3 cp, age, zstd,
# pg_restore). The drill does not need it.
# openssl: the TLS tests make a throwaway CA and server certificate. A headless Chromium: the evidence report's HTML
# is rendered, checked and screenshotted in it.
if [ "${1:-}" = "--for-tests" ]; then
  command -v aws >/dev/null 2>&1 || missing+=(awscli)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v chromium-headless-shell >/dev/null 2>&1 || missing+=(chromium-headless-shell)
fi
if ! command -v pg_dump >/dev/null 2>&1 || ! { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }; then
  missing+=(postgresql)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing ${missing[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "Missing: ${missing[*]}. Install them first, e.g. \`sudo apt-get install ${missing[*]}\` (macOS: \`brew install postgresql@17 zstd age\`)." >&2
  exit 1
fi
