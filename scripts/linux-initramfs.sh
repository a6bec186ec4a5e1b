#!/usr/bin/env bash
# The Linux host's files, built from Debian's arm64 packages only
# (scripts/debian-arm64.sh): the kernel Image, a gzip'd newc initramfs whose
# /init is scripts/linux-init.sh (busybox-static plus Debian's virtio PCI and
# virtio-blk modules), and a small raw disk holding a known pattern.
#
#   scripts/linux-initramfs.sh OUTDIR
# writes OUTDIR/Image, OUTDIR/initramfs.cpio.gz and OUTDIR/disk.img. The
# initramfs is cached under ~/.cache/hvmem/linux, keyed by the kernel version
# and the hash of everything that goes into it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: $0 OUTDIR}
cache=${HVMEM_CACHE:-$HOME/.cache/hvmem}/linux
mkdir -p "$out" "$cache"

kernel=$("$here/debian-arm64.sh" kernel)
busybox=$("$here/debian-arm64.sh" unpack busybox-static)/bin/busybox
vmlinuz=$(ls "$kernel"/boot/vmlinuz-*)
version=${vmlinuz##*/vmlinuz-}
modules="$kernel/lib/modules/$version/kernel"
# Load order: the two transport helpers before virtio_pci, the block driver
# last (virtio core itself is built in). HARDWARE.md section 11.
mods=(drivers/virtio/virtio_pci_legacy_dev.ko drivers/virtio/virtio_pci_modern_dev.ko
      drivers/virtio/virtio_pci.ko drivers/block/virtio_blk.ko)

key=$(cat "$here/linux-init.sh" "$here/linux-initramfs.sh" "$busybox" \
          $(for m in "${mods[@]}"; do echo "$modules/$m"; done) | sha256sum | cut -c1-16)
cpio_gz="$cache/initramfs-$version-$key.cpio.gz"
if [ ! -s "$cpio_gz" ]; then
    stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
    mkdir -p "$stage"/{bin,dev,proc,sys,tmp,lib/modules}
    install -m 0755 "$busybox" "$stage/bin/busybox"
    install -m 0755 "$here/linux-init.sh" "$stage/init"
    for m in "${mods[@]}"; do install -m 0644 "$modules/$m" "$stage/lib/modules/"; done
    # The kernel opens /dev/console before /init runs. Making the node needs
    # root; without it /init reopens the console once devtmpfs is mounted.
    if [ "$(id -u)" = 0 ]; then mknod -m 0600 "$stage/dev/console" c 5 1; fi
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9n > "$cpio_gz.tmp"
    mv "$cpio_gz.tmp" "$cpio_gz"
fi

# The Image is uncompressed despite its name (HARDWARE.md section 11).
ln -sf "$vmlinuz" "$out/Image"
ln -sf "$cpio_gz" "$out/initramfs.cpio.gz"
# 1 MiB disk: sector 0 starts with the pattern the test script reads back.
if [ ! -s "$out/disk.img" ]; then
    head -c 1048576 /dev/zero > "$out/disk.img.tmp"
    printf 'hvmem-virtio-blk-pattern-0123456789abcdef\n' | dd of="$out/disk.img.tmp" conv=notrunc status=none
    mv "$out/disk.img.tmp" "$out/disk.img"
fi
echo "$out"
