#!/usr/bin/env bash
# scripts/build-qemu-s2.sh - build a recent QEMU (>= 9.2, SMMUv3 with stage 2 /
# nesting) for aarch64 system emulation only, and install it under a private
# prefix. `make qemu-s2` runs it; `make test` then boots the image on both
# Debian's QEMU 7.2 (stage-1-only SMMU) and this one (stage 2).
#
# Usage:  scripts/build-qemu-s2.sh [QEMU_SOURCE] [PREFIX]
#
#   QEMU_SOURCE  where the QEMU sources come from (default: debian):
#                  <git dir>   a QEMU git repository (bare or not). The newest
#                              v10.x / v9.2.x release tag is used (release
#                              candidates ignored), else HEAD.
#                  <dir>       an unpacked QEMU source tree (has VERSION, configure)
#                  <tarball>   qemu-X.Y.Z.tar.{xz,bz2,gz}
#                  debian      download Debian's qemu source package (trixie /
#                              trixie-security / bookworm-backports deb-src)
#                              with apt-get, through a private apt state dir,
#                              leaving the system's apt configuration untouched.
#   PREFIX       install prefix (default: $HOME/.cache/qemu-s2)
#
# Environment:
#   QEMU_S2_WORK         scratch directory (default: PREFIX-build, beside the prefix)
#   JOBS                 parallel build jobs (default: 2)
#   QEMU_S2_SUBPROJECTS  (git sources only) directory holding the meson
#                        subprojects a bare git tree lacks (keycodemapdb,
#                        berkeley-softfloat-3, berkeley-testfloat-3), each as
#                        an unpacked tree or a git dir named <name> or <name>.git.
#   QEMU_S2_SKIP_APT=1   do not run apt-get update/install (deps already there).
#
# Needs root for apt-get. Debian's own qemu packages are neither removed nor
# upgraded: the only packages installed are build dependencies (and
# ipxe-qemu, whose EFI NIC option ROMs are copied into PREFIX/share/qemu).
#
# Re-running is cheap: the source tree and the build directory are reused when
# the source version and configure options are unchanged (ninja rebuilds
# nothing); delete the scratch directory to force a clean build.

set -Eeuo pipefail
trap 'echo "build-qemu-s2.sh: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

SRC_ARG=${1:-debian}
PREFIX=${2:-$HOME/.cache/qemu-s2}
WORK=${QEMU_S2_WORK:-$PREFIX-build}
JOBS=${JOBS:-2}
T0=$(date +%s)

log() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { echo "build-qemu-s2.sh: ERROR: $*" >&2; exit 1; }

case "$PREFIX" in /*) ;; *) die "PREFIX must be an absolute path: $PREFIX" ;; esac
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

# Version comparison: ver_ge A B  -> true if A >= B
ver_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# ---------------------------------------------------------------- 1. deps
DEPS=(gcc make git xz-utils
      ninja-build pkg-config python3 python3-venv flex bison
      libglib2.0-dev zlib1g-dev libfdt-dev libslirp-dev
      ipxe-qemu)
if [ "${QEMU_S2_SKIP_APT:-0}" != 1 ]; then
    [ "$(id -u)" = 0 ] || die "run as root (apt-get), or set QEMU_S2_SKIP_APT=1"
    log "apt-get update + install build dependencies"
    apt-get update
    # install only what is missing: never upgrade (or replace) installed packages
    MISSING=()
    for p in "${DEPS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || MISSING+=("$p")
    done
    if [ ${#MISSING[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${MISSING[@]}"
    fi
fi
for tool in gcc make ninja pkg-config /usr/bin/python3 flex bison; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done
pkg-config --exists glib-2.0 zlib || die "missing glib-2.0 / zlib dev packages"
[ -f /usr/include/libfdt.h ] || die "missing libfdt-dev (libfdt.h)"   # bookworm ships no libfdt.pc

# ---------------------------------------------------------------- 2. source
# Every branch sets SRC_ID (a version or commit id) and unpacks into
# $WORK/qemu-$SRC_ID atomically (temp dir + mv), so an existing dir is complete.
unpack_tarball() {  # <tarball> <dest>
    local tb=$1 dest=$2 tmp
    tmp=$(mktemp -d "$WORK/.unpack.XXXXXX")
    tar --no-same-owner -xf "$tb" -C "$tmp"
    local top=("$tmp"/*)
    [ ${#top[@]} = 1 ] && [ -f "${top[0]}/VERSION" ] || die "unexpected tarball layout: $tb"
    mv "${top[0]}" "$dest"
    rm -rf "$tmp"
}

SRC_DESC=""
if [ "$SRC_ARG" = debian ]; then
    log "fetching Debian's qemu source package via apt-get source (private apt state)"
    APTDIR=$WORK/aptsrc
    mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" \
             "$APTDIR/etc/sources.list.d" "$APTDIR/etc/preferences.d" "$WORK/src-dl"
    KR=/usr/share/keyrings/debian-archive-keyring.gpg
    # Use the mirrors this machine's apt is already configured with (deb822 .sources or sources.list).
    uris=$( { cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*//p'
              cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
                  | sed -n 's/^deb\(-src\)\?[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\3/p'
            } | tr ' ' '\n' | sed '/^$/d' | sort -u || true)
    MIRROR=$(echo "$uris" | grep -v -- '-security/*$' | head -n1)
    SECMIRROR=$(echo "$uris" | grep -- '-security/*$' | head -n1)
    [ -n "$MIRROR" ] || die "no Debian mirror found in this machine's apt sources"
    {
        echo "deb-src [signed-by=$KR] $MIRROR trixie main"
        echo "deb-src [signed-by=$KR] $MIRROR trixie-updates main"
        [ -z "$SECMIRROR" ] || echo "deb-src [signed-by=$KR] $SECMIRROR trixie-security main"
        echo "deb-src [signed-by=$KR] $MIRROR bookworm-backports main"
    } > "$APTDIR/etc/sources.list"
    APTO=(-o "Dir::Etc::SourceList=$APTDIR/etc/sources.list"
          -o "Dir::Etc::SourceParts=$APTDIR/etc/sources.list.d"
          -o "Dir::Etc::Preferences=/dev/null"
          -o "Dir::Etc::PreferencesParts=$APTDIR/etc/preferences.d"
          -o "Dir::State::Lists=$APTDIR/lists"
          -o "Dir::State::status=/dev/null"
          -o "Dir::Cache=$APTDIR/cache"
          -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
    apt-get "${APTO[@]}" update
    DEBVER=$(apt-cache "${APTO[@]}" showsrc qemu | sed -n 's/^Version: //p' | sort -V | tail -n1)
    [ -n "$DEBVER" ] || die "no qemu source package found"
    UPVER=${DEBVER#*:}; UPVER=${UPVER%%+*}; UPVER=${UPVER%%-*}
    ver_ge "$UPVER" 9.2 || die "Debian's newest qemu source is $DEBVER (< 9.2)"
    (cd "$WORK/src-dl" && apt-get "${APTO[@]}" source --download-only "qemu=$DEBVER")
    ORIG=$(ls "$WORK"/src-dl/qemu_"$UPVER"*.orig.tar.* | head -n1)
    [ -f "$ORIG" ] || die "orig tarball for $DEBVER not downloaded"
    SRC_ID=$UPVER
    SRC_DESC="Debian source package qemu $DEBVER (upstream tarball $(basename "$ORIG"), no Debian patches)"
    SRCDIR=$WORK/qemu-$SRC_ID
    [ -f "$SRCDIR/VERSION" ] || unpack_tarball "$ORIG" "$SRCDIR"
elif [ -f "$SRC_ARG" ]; then
    case "$SRC_ARG" in *.tar.xz|*.tar.bz2|*.tar.gz|*.tgz) ;; *) die "not a tarball: $SRC_ARG" ;; esac
    SRC_ID=$(basename "$SRC_ARG"); SRC_ID=${SRC_ID%.tar.*}; SRC_ID=${SRC_ID%.tgz}; SRC_ID=${SRC_ID#qemu-}
    SRC_DESC="tarball $(basename "$SRC_ARG")"
    SRCDIR=$WORK/qemu-$SRC_ID
    [ -f "$SRCDIR/VERSION" ] || unpack_tarball "$SRC_ARG" "$SRCDIR"
elif [ -d "$SRC_ARG" ] && GITDIR=$(git -c safe.directory='*' -C "$SRC_ARG" rev-parse --absolute-git-dir 2>/dev/null); then
    G=(git -c safe.directory='*' --git-dir="$GITDIR")
    REF=$("${G[@]}" tag -l 'v10.*' 'v9.2.*' | grep -Ev -- '-rc[0-9]*$' | sort -V | tail -n1 || true)
    if [ -z "$REF" ]; then
        REF=HEAD
        echo "build-qemu-s2.sh: no v10.x / v9.2.x release tag in $SRC_ARG; using HEAD" >&2
    fi
    COMMIT=$("${G[@]}" rev-parse --verify "$REF^{commit}")
    SRC_ID="${REF#v}-${COMMIT:0:12}"; [ "$REF" = HEAD ] && SRC_ID="git-${COMMIT:0:12}"
    SRC_DESC="git $REF ($COMMIT)"
    SRCDIR=$WORK/qemu-$SRC_ID
    if [ ! -f "$SRCDIR/VERSION" ]; then
        log "exporting $REF ($COMMIT) into a scratch tree"
        tmp=$(mktemp -d "$WORK/.unpack.XXXXXX")
        "${G[@]}" archive --format=tar --prefix=qemu/ "$COMMIT" | tar -xf - -C "$tmp"
        mv "$tmp/qemu" "$SRCDIR"; rm -rf "$tmp"
    fi
    UPVER=$(cat "$SRCDIR/VERSION")
    ver_ge "$UPVER" 9.1.90 || die "source version $UPVER is older than 9.2"
    # A git tree lacks the meson subprojects that release tarballs bundle.
    for sp in keycodemapdb berkeley-softfloat-3 berkeley-testfloat-3; do
        [ -f "$SRCDIR/subprojects/$sp/meson.build" ] && continue
        rev=$(sed -n 's/^revision *= *//p' "$SRCDIR/subprojects/$sp.wrap")
        found=""
        for cand in "${QEMU_S2_SUBPROJECTS:-/nonexistent}/$sp" "${QEMU_S2_SUBPROJECTS:-/nonexistent}/$sp.git"; do
            [ -e "$cand" ] || continue
            rm -rf "$SRCDIR/subprojects/$sp"
            if spgit=$(git -c safe.directory='*' -C "$cand" rev-parse --absolute-git-dir 2>/dev/null) \
               && git -c safe.directory='*' --git-dir="$spgit" cat-file -e "$rev^{commit}" 2>/dev/null; then
                mkdir -p "$SRCDIR/subprojects/$sp"
                git -c safe.directory='*' --git-dir="$spgit" archive "$rev" | tar -xf - -C "$SRCDIR/subprojects/$sp"
            else
                cp -a "$cand" "$SRCDIR/subprojects/$sp"
            fi
            # the wrap's patch_directory overlay (meson only applies it on download)
            if [ -d "$SRCDIR/subprojects/packagefiles/$sp" ]; then
                cp -a "$SRCDIR/subprojects/packagefiles/$sp/." "$SRCDIR/subprojects/$sp/"
            fi
            found=$cand; break
        done
        [ -n "$found" ] || die "subproject '$sp' (rev $rev) missing from the git tree; set QEMU_S2_SUBPROJECTS to a dir holding it (or use a release tarball / 'debian')"
    done
elif [ -d "$SRC_ARG" ] && [ -f "$SRC_ARG/VERSION" ] && [ -x "$SRC_ARG/configure" ]; then
    SRC_ID=$(cat "$SRC_ARG/VERSION")
    SRC_DESC="source tree $(basename "$SRC_ARG")"
    SRCDIR=$WORK/qemu-$SRC_ID
    if [ ! -f "$SRCDIR/VERSION" ]; then
        tmp=$(mktemp -d "$WORK/.unpack.XXXXXX")
        cp -a "$SRC_ARG/." "$tmp/"
        mv "$tmp" "$SRCDIR"
    fi
else
    die "QEMU_SOURCE '$SRC_ARG' is not a git dir, a source tree, a tarball or 'debian'"
fi
QVER=$(cat "$SRCDIR/VERSION")
ver_ge "$QVER" 9.1.90 || die "QEMU $QVER is older than 9.2"
log "QEMU source: $QVER in $SRCDIR ($SRC_DESC)"

# Debian's repacked tarball strips the prebuilt edk2 firmware blobs, and the
# meson build would otherwise try to unpack them (same fix as Debian's
# skip-unpack-edk2-blobs.patch).
if [ ! -f "$SRCDIR/pc-bios/edk2-aarch64-code.fd.bz2" ]; then
    sed -i 's/^if unpack_edk2_blobs$/if unpack_edk2_blobs and false/' "$SRCDIR/pc-bios/meson.build"
    grep -q '^if unpack_edk2_blobs and false$' "$SRCDIR/pc-bios/meson.build" \
        || die "could not disable edk2 blob unpacking in pc-bios/meson.build"
fi

# ---------------------------------------------------------------- 3. meson venv
# QEMU needs a newer meson (>= 1.5) than bookworm's 1.0.1. It runs meson from
# its own venv; when configure's --python is itself a venv, that venv's
# packages are inherited. Install the versions pinned in pythondeps.toml:
# from the tree's python/wheels when present (upstream tarballs, git), else
# from PyPI (Debian's repacked tarball strips python/wheels/*.whl).
pin() { sed -n "s/^$1 *=.*installed *= *\"\([^\"]*\)\".*/\1/p" "$SRCDIR/pythondeps.toml"; }
MESON_VER=$(pin meson); PYCOTAP_VER=$(pin pycotap)
[ -n "$MESON_VER" ] || die "cannot read meson version from pythondeps.toml"
VENV=$WORK/tools-venv
[ -x "$VENV/bin/python3" ] || /usr/bin/python3 -m venv "$VENV"
REQS=("meson==$MESON_VER"); [ -n "$PYCOTAP_VER" ] && REQS+=("pycotap==$PYCOTAP_VER")
if ! "$VENV/bin/python3" -m pip install -q --no-index --find-links "$SRCDIR/python/wheels" "${REQS[@]}" 2>/dev/null; then
    log "installing ${REQS[*]} from PyPI into $VENV"
    "$VENV/bin/python3" -m pip install -q "${REQS[@]}"
fi
"$VENV/bin/meson" --version

# ---------------------------------------------------------------- 4. configure
CONFIG_OPTS=(
    --prefix="$PREFIX"
    --target-list=aarch64-softmmu
    --python="$VENV/bin/python3"
    --disable-download          # never fetch subprojects / wheels
    --without-default-features  # every 'auto' feature off (UI, audio, crypto, tools, docs, ...)
    --enable-fdt=system         # Debian's libfdt-dev instead of the dtc subproject
    --enable-slirp              # user-mode networking (-nic user)
    --disable-docs
    --disable-install-blobs     # firmware blobs are stripped from Debian's tarball
    --disable-werror
    --disable-debug-info
)
BUILD=$WORK/build
STAMP="$QVER|$SRCDIR|${CONFIG_OPTS[*]}"
if [ -f "$BUILD/build.ninja" ] && [ "$(cat "$BUILD/.qemu-s2-config" 2>/dev/null)" = "$STAMP" ]; then
    log "reusing configured build dir $BUILD"
else
    log "configure: ${CONFIG_OPTS[*]}"
    rm -rf "$BUILD"; mkdir -p "$BUILD"
    (cd "$BUILD" && "$SRCDIR/configure" "${CONFIG_OPTS[@]}")
    printf '%s' "$STAMP" > "$BUILD/.qemu-s2-config"
fi

# ---------------------------------------------------------------- 5. build
# Build only what 'meson install' installs (qemu-system-aarch64 + trace
# events); the unit/qtest/softfloat test programs are skipped.
MESON=$BUILD/pyvenv/bin/meson
mapfile -t TARGETS < <(cd "$BUILD" && "$MESON" introspect --targets . | "$VENV/bin/python3" -c '
import json, os, sys
for t in json.load(sys.stdin):
    if t.get("installed"):
        for f in t["filename"]:
            print(os.path.relpath(f, os.getcwd()))')
[ ${#TARGETS[@]} -gt 0 ] || die "no installable targets found"
log "ninja -j$JOBS ${TARGETS[*]}"
TB=$(date +%s)
ninja -C "$BUILD" -j"$JOBS" "${TARGETS[@]}"
log "build step took $(( $(date +%s) - TB ))s"

# ---------------------------------------------------------------- 6. install
log "installing into $PREFIX"
"$MESON" install -C "$BUILD" --no-rebuild
# The PCI NICs' option ROMs (efi-virtio.rom, ...) are stripped from Debian's
# tarball; without them the virt machine's default virtio-net NIC fails with
# "failed to find romfile". Take them from Debian's ipxe-qemu package.
mkdir -p "$PREFIX/share/qemu"
for rom in /usr/lib/ipxe/qemu/efi-*.rom /usr/lib/ipxe/qemu/pxe-*.rom; do
    [ -f "$rom" ] || continue
    [ -e "$PREFIX/share/qemu/$(basename "$rom")" ] || cp -L "$rom" "$PREFIX/share/qemu/"
done
[ -f "$PREFIX/share/qemu/efi-virtio.rom" ] || echo "build-qemu-s2.sh: WARNING: no efi-virtio.rom; use -nic none" >&2

QEMU_BIN=$PREFIX/bin/qemu-system-aarch64
[ -x "$QEMU_BIN" ] || die "$QEMU_BIN was not installed"
cat > "$PREFIX/share/qemu/qemu-s2-build-info.txt" <<EOF
source: $SRC_DESC
version: $QVER
configure: ${CONFIG_OPTS[*]}
built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release && echo "$PRETTY_NAME") $(uname -m)
EOF

# ---------------------------------------------------------------- 7. check
log "smoke test"
"$QEMU_BIN" -M virt,virtualization=on,iommu=smmuv3 -cpu max -m 256M -nographic \
    -device edu -S -monitor none -serial none -display none &
QPID=$!; sleep 2
if kill -0 "$QPID" 2>/dev/null; then kill "$QPID"; wait "$QPID" 2>/dev/null || true
else wait "$QPID" || die "virt,virtualization=on,iommu=smmuv3 -device edu failed to start"; fi

log "done in $(( $(date +%s) - T0 ))s: $QEMU_BIN"
"$QEMU_BIN" --version
