#!/bin/busybox sh
# /init of the Linux host's initramfs (built by scripts/linux-initramfs.sh).
# Prints one [PASS]/[FAIL] line per check and powers off (PSCI SYSTEM_OFF),
# which hands the verdict to the hypervisor when there is one.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "init: reached /init"

pass=0; fail=0
check() {  # check <status> <message>
    if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "[PASS] $2"
    else fail=$((fail + 1)); echo "[FAIL] $2"; fi
}
check 0 "linux: booted to /init ($(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs)"

# Debian's virtio modules from the initramfs, then the known pattern at the
# start of the disk (scripts/linux-initramfs.sh writes it).
virtio_blk() {
    local m
    for m in virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
        insmod /lib/modules/$m.ko || return 1
    done
    local i=0
    while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    [ "$(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -n1)" = hvmem-virtio-blk-pattern-0123456789abcdef ]
}
if grep -q 1af4 /sys/bus/pci/devices/*/vendor 2>/dev/null && \
   grep -qx 0x1042 /sys/bus/pci/devices/*/device 2>/dev/null; then
    virtio_blk; check $? "virtio-blk: Debian's modules loaded, the disk's first sector holds the pattern"
fi

echo "init: $pass passed, $fail failed"
poweroff -f
