#!/usr/bin/env bash
# Install the Debian packages the build and the QEMU runs need, when missing.
# Non-interactive; uses sudo only when not already root.
set -euo pipefail
need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
for p in qemu-system-arm ipxe-qemu binutils-aarch64-linux-gnu device-tree-compiler gdb-multiarch jq; do
    have "$p" || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
echo "deps: installing ${need[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
