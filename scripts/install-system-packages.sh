#!/usr/bin/env bash
# Debian packages the tests need: Fashion-MNIST (a real image data set, read offline) and
# Chromium (the browser test opens the HTML reports headless). Installs only what is missing.
set -euo pipefail
needed=()
for pkg in dataset-fashion-mnist chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || needed+=("$pkg")
done
[ ${#needed[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${needed[@]}"
