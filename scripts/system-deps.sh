#!/usr/bin/env bash
# Installs the system packages the tests use (scripts/system-packages.txt), then returns.
# Runs as `npm test`'s pretest, so the README's test command sets up a fresh Debian or Ubuntu
# machine by itself. It installs only when it may (root, or sudo without a password); otherwise it
# prints the exact install line and exits non-zero before any test runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# MISSIVE_SYSTEM_PACKAGES names another list (the script's own test uses it).
LIST="${MISSIVE_SYSTEM_PACKAGES:-scripts/system-packages.txt}"
mapfile -t PACKAGES < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$LIST")

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "system-deps: this is not a Debian or Ubuntu machine (no dpkg-query)." >&2
  echo "system-deps: install the equivalents of: ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

LINE="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "system-deps: the tests need these system packages: ${missing[*]}" >&2
  echo "system-deps: install them as root, then run the tests again:" >&2
  echo "  sudo sh -c '$LINE'" >&2
  exit 1
fi

echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
