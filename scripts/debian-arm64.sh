#!/usr/bin/env bash
# Fetch and unpack Debian arm64 packages (no downloads beyond Debian's archive),
# cached under ~/.cache/hvmem/debian-arm64.
#
#   scripts/debian-arm64.sh unpack PACKAGE   print the directory PACKAGE is unpacked in
#   scripts/debian-arm64.sh kernel           print the unpacked versioned linux-image
#                                            package that linux-image-arm64 depends on
#
# The arm64 foreign architecture is added (dpkg --add-architecture) once; apt-get
# download needs no root, but adding the architecture and apt-get update do.
set -euo pipefail
CACHE=${HVMEM_CACHE:-$HOME/.cache/hvmem}/debian-arm64
mkdir -p "$CACHE"
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo

ensure_arch() {
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        echo "debian-arm64: adding the arm64 architecture" >&2
        $sudo dpkg --add-architecture arm64
        $sudo apt-get update -q >&2
    else
        # Package lists for arm64 exist once an update ran after the architecture
        # was added (a fresh machine may have added it without updating).
        local policy
        policy=$(apt-cache policy "linux-image-arm64:arm64" 2>/dev/null || true)
        case "$policy" in *"Candidate: ("*|"") $sudo apt-get update -q >&2 ;; esac
    fi
}

# unpack NAME: download NAME:arm64 once, unpack it once, print the directory.
unpack() {
    local name=$1 dir="$CACHE/$1"
    if [ ! -f "$dir/.unpacked" ]; then
        ensure_arch
        rm -rf "$dir"; mkdir -p "$dir/root"
        (cd "$dir" && apt-get download -q "$name:arm64" >&2)
        dpkg-deb -x "$dir"/*.deb "$dir/root"
        touch "$dir/.unpacked"
    fi
    echo "$dir/root"
}

# The metapackage linux-image-arm64 depends on exactly one versioned
# linux-image-6.x.y-N-arm64 package, which holds vmlinuz, modules and dtbs.
kernel_package() {
    ensure_arch
    apt-cache depends "linux-image-arm64:arm64" 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*-arm64\)\(:arm64\)\{0,1\}$/\1/p' | head -n1
}

case "${1:-}" in
    unpack) [ -n "${2:-}" ] || { echo "usage: $0 unpack PACKAGE" >&2; exit 2; }; unpack "$2" ;;
    kernel)
        pkg=$(kernel_package)
        [ -n "$pkg" ] || { echo "debian-arm64: cannot resolve linux-image-arm64's kernel package" >&2; exit 1; }
        unpack "$pkg" ;;
    *) echo "usage: $0 unpack PACKAGE | kernel" >&2; exit 2 ;;
esac
