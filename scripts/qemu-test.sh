#!/usr/bin/env bash
# The QEMU boot test: boots the image in several machine configurations, each
# with a 20-second timeout, and checks the exit status and the lines the image
# must print. Ends with `qemu: N passed, N failed`.
#
#   scripts/qemu-test.sh build/hypervisor.bin
# Environment: QEMU (Debian's 7.2 by default), QEMU_S2 (a QEMU >= 9.2 whose
# SMMU has stage 2; its scenarios run when the binary exists), CPU, MEM,
# KEEP_LOGS=dir to keep each boot's console output.
set -u
IMAGE=${1:-build/hypervisor.bin}
QEMU=${QEMU:-qemu-system-aarch64}
QEMU_S2=${QEMU_S2:-$HOME/.cache/qemu-s2/bin/qemu-system-aarch64}
CPU=${CPU:-max}
MEM=${MEM:-1G}
TIMEOUT=${TIMEOUT:-20}
LOGS=${KEEP_LOGS:-$(mktemp -d)}
mkdir -p "$LOGS"
passed=0
failed=0

check() {  # check <ok:0|1> <message>
    if [ "$1" = 0 ]; then passed=$((passed + 1)); echo "[PASS] $2"
    else failed=$((failed + 1)); echo "[FAIL] $2"; fi
}

# scenario <name> <qemu> <expected exit> <qemu args...> -- <regex>...
scenario() {
    local name=$1 qemu=$2 want=$3; shift 3
    local args=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
    shift
    local log="$LOGS/$name.log"
    timeout "$TIMEOUT" "$qemu" "${args[@]}" -nographic -semihosting -append "hv.exit=semihosting ${APPEND:-}" \
        -kernel "$IMAGE" </dev/null >"$log" 2>&1
    local rc=$?
    if [ "$rc" = "$want" ]; then check 0 "$name: exit status $rc"
    else check 1 "$name: exit status $rc, expected $want (log: $log)"; sed 's/^/    | /' "$log" | tail -40; fi
    local pattern
    for pattern in "$@"; do
        if grep -Eq -- "$pattern" "$log"; then check 0 "$name: /$pattern/"
        else check 1 "$name: /$pattern/ not in the console output (log: $log)"; fi
    done
    if grep -q '^\[FAIL\]' "$log"; then
        check 1 "$name: the image reported failures:"; grep '^\[FAIL\]' "$log" | sed 's/^/    | /'
    fi
}

# The arm64 Image header (Documentation/arch/arm64/booting.rst): what QEMU's
# -kernel and U-Boot's booti read before they jump.
le64() { od -An -t u8 -j "$1" -N 8 "$IMAGE" | tr -d ' '; }
le32() { od -An -t u4 -j "$1" -N 4 "$IMAGE" | tr -d ' '; }
[ "$(le32 56)" = $((0x644d5241)) ]; check $? "image header: magic \"ARM\\x64\" at offset 56"
[ "$(le64 8)" = 0 ]; check $? "image header: text_offset 0 (the image starts on a 2 MiB boundary)"
[ "$(le64 24)" = $((0xa)) ]; check $? "image header: flags 0xa = little-endian, 4 KiB pages, placement anywhere (bit 3)"
size=$(le64 16); file=$(stat -c %s "$IMAGE")
[ "$size" -ge "$file" ] && [ $((size % 4096)) = 0 ]; check $? "image header: image_size $size covers the file ($file bytes) and BSS"
[ $(( $(le32 0) >> 26 )) = 5 ]; check $? "image header: code0 is a branch (b primary_entry)"

VIRT=virt,virtualization=on,iommu=smmuv3
DMA_LINES=('\[PASS\] DMA through the SMMU' '\[PASS\] the DMA after unmap faulted with F_TRANSLATION'
           '\[PASS\] stage 2: a 4 KiB unmap inside the block' '\[PASS\] seed 004'
           '\[PASS\] guest: a stage-2 translation fault is served')
COMMON_S1=('running at EL2' 'stage 1: yes, stage 2: no' 'mode: stage-1 IOMMU table mirrored from the P2M'
           'board: [1-9][0-9]* passed, 0 failed' "${DMA_LINES[@]}")

# The README's `make run`: QEMU 7.2, stage-1-only SMMU, edu behind the default NIC.
scenario qemu72-default "$QEMU" 0 -M "$VIRT" -cpu "$CPU" -m "$MEM" -device edu -- \
    "${COMMON_S1[@]}" 'pci 00:02\.0 1234:11e8 .*streamid 0x10' 'pci 00:01\.0 1af4:1000'
# No default NIC: edu moves to 00:01.0 (StreamID 0x08): nothing may assume the slot.
scenario qemu72-nodefaults "$QEMU" 0 -M "$VIRT" -cpu "$CPU" -m 2G -smp 2 -nic none -device edu -- \
    "${COMMON_S1[@]}" 'pci 00:01\.0 1234:11e8 .*streamid 0x8' 'memory: 0x40000000 \+ 0x80000000'
# A v8.0 CPU (no LSE, 44-bit PA), GICv3, 512 MiB.
scenario qemu72-a57-gicv3 "$QEMU" 0 -M "$VIRT,gic-version=3" -cpu cortex-a57 -m 512M -device edu -- \
    "${COMMON_S1[@]}" 'memory: 0x40000000 \+ 0x20000000'
# RAM that ends inside a 1 GiB block: the EL2 map splits that block into 2 MiB blocks.
scenario qemu72-1536m "$QEMU" 0 -M "$VIRT" -cpu "$CPU" -m 1536M -device edu -- \
    "${COMMON_S1[@]}" 'memory: 0x40000000 \+ 0x60000000' '1 split blocks'
# A device tree given with -dtb (make run DTB=...), here one dumped from QEMU itself.
DUMPED_DTB=$(dirname "$0")/../Tests/PlatformTests/DTBs/virt-m2g-smp2.dtb
scenario qemu72-dtb-file "$QEMU" 0 -M "$VIRT" -cpu "$CPU" -m 2G -smp 2 -device edu -dtb "$DUMPED_DTB" -- \
    "${COMMON_S1[@]}" 'memory: 0x40000000 \+ 0x80000000'
# The same machine, but its device tree says the SMMU is not dma-coherent: the
# driver must then clean tables, STEs, CDs and queue entries to PoC, and keep a
# stage-1 mirror (whose writes it cleans) even where stage 2 exists.
noncoherent_dtb() {  # noncoherent_dtb <qemu> <out.dtb>
    local dts
    "$1" -M "$VIRT,dumpdtb=$2.orig" -cpu "$CPU" -m "$MEM" -device edu -nographic >/dev/null 2>&1 || return 1
    dts=$(dtc -q -I dtb -O dts "$2.orig") || return 1
    printf '%s\n' "$dts" | awk '/smmuv3@/ {in_smmu=1} in_smmu && /dma-coherent;/ {next} /};/ {in_smmu=0} {print}' \
        | dtc -q -I dts -O dtb -o "$2" - || return 1
}
if noncoherent_dtb "$QEMU" "$LOGS/noncoherent-72.dtb"; then
    scenario qemu72-noncoherent-smmu "$QEMU" 0 -M "$VIRT" -cpu "$CPU" -m "$MEM" -device edu -dtb "$LOGS/noncoherent-72.dtb" -- \
        "${COMMON_S1[@]}" 'smmu: arm,smmu-v3 at 0x[0-9a-f]+ \+ 0x[0-9a-f]+, not dma-coherent'
else
    check 1 "qemu72-noncoherent-smmu: could not build the non-coherent DTB (dtc)"
fi
# No SMMU in the machine (nor in its DTB): the image says so and checks the rest.
scenario qemu72-no-smmu "$QEMU" 0 -M virt,virtualization=on -cpu "$CPU" -m "$MEM" -device edu -- \
    'describes no arm,smmu-v3' '(no iommu-map entry)' '\[PASS\] stage 2: a 2 MiB block' 'board: [1-9][0-9]* passed, 0 failed'
# An unexpected exception at EL2 is reported (class, ESR/ELR/FAR) and ends the run.
APPEND=hv.selftest=exception scenario qemu72-exception-report "$QEMU" 2 -M "$VIRT" -cpu "$CPU" -m "$MEM" -- \
    'exception: unexpected synchronous from EL2: data abort \(EL2\)' 'ESR_EL2 0x9[67][0-9a-f]{6} +ELR_EL2 0x402[0-9a-f]{5} +FAR_EL2 0x20000000000' \
    'board: 1 passed, 1 failed'
# Started at EL1 it must refuse, clearly, and stop on its own.
scenario qemu72-el1-refusal "$QEMU" 3 -M virt,iommu=smmuv3 -cpu "$CPU" -m "$MEM" -- \
    'refusing to run at EL1'

if [ -x "$QEMU_S2" ]; then
    COMMON_S2=('running at EL2' 'stage 1: yes, stage 2: yes' 'mode: stage 2 shares the P2M'
               'board: [1-9][0-9]* passed, 0 failed' "${DMA_LINES[@]}" 'F_TRANSLATION .* stage 2')
    scenario qemu-s2-default "$QEMU_S2" 0 -M "$VIRT" -cpu "$CPU" -m "$MEM" -device edu -- \
        "${COMMON_S2[@]}" 'pci 00:02\.0 1234:11e8 .*streamid 0x10'
    scenario qemu-s2-nodefaults "$QEMU_S2" 0 -M "$VIRT" -cpu "$CPU" -m 3G -smp 2 -nic none -device edu -- \
        "${COMMON_S2[@]}" 'pci 00:01\.0 1234:11e8 .*streamid 0x8'
    # The same QEMU as an older machine type has a stage-1-only SMMU again.
    scenario qemu-s2-virt91 "$QEMU_S2" 0 -M "virt-9.1,virtualization=on,iommu=smmuv3" -cpu "$CPU" -m "$MEM" -device edu -- \
        "${COMMON_S1[@]}"
    if noncoherent_dtb "$QEMU_S2" "$LOGS/noncoherent-s2.dtb"; then
        scenario qemu-s2-noncoherent-smmu "$QEMU_S2" 0 -M "$VIRT" -cpu "$CPU" -m "$MEM" -device edu -dtb "$LOGS/noncoherent-s2.dtb" -- \
            'stage 1: yes, stage 2: yes' 'mode: stage-1 IOMMU table mirrored from the P2M' 'not dma-coherent' \
            'board: [1-9][0-9]* passed, 0 failed'
    else
        check 1 "qemu-s2-noncoherent-smmu: could not build the non-coherent DTB (dtc)"
    fi
else
    echo "qemu: $QEMU_S2 not found: the stage-2 SMMU scenarios need it (make qemu-s2)"
    check 1 "QEMU with a stage-2 SMMU is available at $QEMU_S2"
fi

# ---- U-Boot: booti at three load addresses, on both QEMUs ------------------
# Debian's u-boot-qemu as -bios; the image put in RAM by QEMU's loader device
# (not by -kernel), U-Boot's console driven by scripts/uboot-boot.py. With
# header bit 3 set booti runs the image where it lies (2 MiB-aligned): low,
# middle and near the top of 1 GiB of RAM (U-Boot itself and the DTB it hands
# over sit above 0x7d000000).
UBOOT=${UBOOT:-/usr/lib/u-boot/qemu_arm64/u-boot.bin}
UBOOT_TIMEOUT=${UBOOT_TIMEOUT:-30}
uboot_scenario() {  # uboot_scenario <name> <qemu> <address> <patterns>... (RUNS_AT: where booti runs it)
    local name=$1 qemu=$2 address=$3; shift 3
    local runs_at=${RUNS_AT:-$address}
    local log="$LOGS/$name.log" rc=0
    "$(dirname "$0")/uboot-boot.py" "$address" "$UBOOT_TIMEOUT" "$qemu" -M "$VIRT" -cpu "$CPU" -m 1G -nographic \
        -semihosting -bios "$UBOOT" -device "loader,file=$IMAGE,addr=$address,force-raw=on" -device edu \
        >"$log" 2>&1 </dev/null || rc=$?
    if [ "$rc" = 0 ]; then check 0 "$name: exit status 0"
    else check 1 "$name: exit status $rc, expected 0 (log: $log)"; sed 's/^/    | /' "$log" | tail -40; fi
    local pattern
    for pattern in "image: $(printf '0x%x' "$runs_at") \+" 'board: [1-9][0-9]* passed, 0 failed' "$@"; do
        if grep -Eq -- "$pattern" "$log"; then check 0 "$name: /$pattern/"
        else check 1 "$name: /$pattern/ not in the console output (log: $log)"; fi
    done
    if grep -q '^\[FAIL\]' "$log"; then
        check 1 "$name: the image reported failures:"; grep '^\[FAIL\]' "$log" | sed 's/^/    | /'
    fi
}
if [ -r "$UBOOT" ]; then
    for address in 0x40200000 0x60000000 0x7c000000; do
        uboot_scenario "uboot-qemu72-$address" "$QEMU" "$address" 'stage 1: yes, stage 2: no'
        if [ -x "$QEMU_S2" ]; then
            uboot_scenario "uboot-qemu-s2-$address" "$QEMU_S2" "$address" 'stage 1: yes, stage 2: yes'
        fi
    done
    # Not 2 MiB-aligned: booti moves the image up to the next 2 MiB boundary.
    RUNS_AT=0x60200000 uboot_scenario uboot-qemu72-unaligned "$QEMU" 0x60080000 'Moving Image from 0x60080000 to 0x60200000'
else
    check 1 "U-Boot for QEMU at $UBOOT (make deps installs u-boot-qemu)"
fi

# ---- Devices the DTB describes that the machine lacks -----------------------
# QEMU's own virt DTB (with SMMU and high ECAM) on a machine without the SMMU,
# then on one without the high ECAM (highmem=off): the load from the missing
# device's registers aborts, the image reports it, skips those checks and
# runs the rest.
scenario qemu72-absent-smmu "$QEMU" 0 -M virt,virtualization=on -cpu "$CPU" -m 1G -device edu -dtb "$DUMPED_DTB" -- \
    'smmu: the arm,smmu-v3 the DTB describes at 0x9050000 does not answer' 'pci 00:02\.0 1234:11e8' \
    'board: [1-9][0-9]* passed, 0 failed'
scenario qemu72-absent-ecam "$QEMU" 0 -M "$VIRT,highmem=off" -cpu "$CPU" -m 1G -device edu -dtb "$DUMPED_DTB" -- \
    'pcie: the ECAM the DTB describes at 0x4010000000 does not answer' 'stage 1: yes, stage 2: no' \
    'board: [1-9][0-9]* passed, 0 failed'

# ---- Raspberry Pi 4B (QEMU 10's raspi4b) with the board's own device tree --
# Debian's bcm2711-rpi-4-b.dtb: RAM at 0, devices at bus addresses that
# /soc's ranges translate, the console on the BCM2835 mini UART (serial1,
# QEMU's second -serial), no SMMU and no PCIe in QEMU's model: the checks
# that apply run, the rest are reported as not applying.
if [ -x "$QEMU_S2" ]; then
    RPI_DTB=${RPI_DTB:-$(echo "$("$(dirname "$0")/debian-arm64.sh" kernel)"/usr/lib/linux-image-*/broadcom/bcm2711-rpi-4-b.dtb)}
    if [ -r "$RPI_DTB" ]; then
        scenario raspi4b "$QEMU_S2" 0 -M raspi4b -serial null -serial mon:stdio -dtb "$RPI_DTB" -- \
            'running at EL2' 'memory: 0x0 \+' 'console: ns16550 \(reg-shift 2, reg-io-width 4\) at 0xfe215040' \
            'describes no arm,smmu-v3' 'no pci-host-ecam-generic bridge: the PCI checks do not apply' \
            '\[PASS\] stage 2: a 2 MiB block' '\[PASS\] guest: a stage-2 translation fault is served' \
            'board: [1-9][0-9]* passed, 0 failed'
    else
        check 1 "raspi4b: Debian's bcm2711-rpi-4-b.dtb (scripts/debian-arm64.sh kernel) at $RPI_DTB"
    fi
fi

# ---- Debian's Linux as the deprivileged host (hv.host=linux) -----------------
# The kernel and initramfs come from scripts/linux-initramfs.sh (LINUX_DIR,
# built by `make linux`). Each scenario boots the hypervisor with
# `-kernel`, the kernel with `-device loader` at LINUX_ADDR and the initramfs
# with `-initrd`; /init (scripts/linux-init.sh) prints [PASS]/[FAIL] lines and
# powers off, and the hypervisor closes with its own checks and verdict.
# The first scenario also boots the same kernel, initramfs and machine
# without the hypervisor and prints both times from QEMU's start to /init.
LINUX_DIR=${LINUX_DIR:-$(dirname "$0")/../build/linux}
LINUX_ADDR=${LINUX_ADDR:-0x50000000}
LINUX_TIMEOUT=${LINUX_TIMEOUT:-60}
LINUX_APPEND="console=ttyAMA0 quiet"
# On QEMU 7.2 the host's DMA domain is a stage-1 mirror that never maps MMIO,
# so the GIC's MSI doorbell is not reachable by DMA and virtio would wait for
# an MSI forever: those scenarios add pci=nomsi. QEMU 10 shares the stage 2,
# which maps the doorbell as Device memory, so MSIs work there.
NOMSI=pci=nomsi
LINUX_DEVICES=(-device edu,dma_mask=0xffffffffffffffff
               -drive "file=$LINUX_DIR/disk.img,if=none,id=d0,format=raw,readonly=on"
               -device virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on)

# boot_timed <log> <qemu args...>: runs QEMU, logging its output, and prints
# the seconds from QEMU's start to the line "init: reached /init" (or "-");
# the seconds to the hypervisor's "host: entering the kernel" line go to
# $log.entered.
boot_timed() {
    local log=$1; shift
    local start=$EPOCHREALTIME reached=- entered=- line
    : >"$log"
    while IFS= read -r line; do
        printf '%s\n' "$line" >>"$log"
        if [ "$entered" = - ] && [[ $line == "host: entering the kernel"* ]]; then
            entered=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
        fi
        if [ "$reached" = - ] && [[ $line == *"init: reached /init"* ]]; then
            reached=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
        fi
    done < <(timeout "$LINUX_TIMEOUT" "$@" </dev/null 2>&1; echo "qemu-exit-status: $?")
    echo "$entered" >"$log.entered"
    echo "$reached"
}

# linux_scenario <name> <qemu> <cpu> <mem> <smp> [regex...]
linux_scenario() {
    local name=$1 qemu=$2 cpu=$3 mem=$4 smp=$5; shift 5
    local log="$LOGS/$name.log" t rc
    t=$(boot_timed "$log" "$qemu" -M "$VIRT" -cpu "$cpu" -m "$mem" -smp "$smp" -nographic -semihosting \
          -kernel "$IMAGE" -device "loader,file=$LINUX_DIR/Image,addr=$LINUX_ADDR,force-raw=on" \
          -initrd "$LINUX_DIR/initramfs.cpio.gz" "${LINUX_DEVICES[@]}" \
          -append "hv.exit=semihosting hv.host=linux hv.kernel=$LINUX_ADDR $LINUX_APPEND ${LINUX_EXTRA:-}")
    rc=$(sed -n 's/^qemu-exit-status: //p' "$log")
    echo "$name: QEMU start to /init under the hypervisor: ${t}s (the hypervisor entered the kernel at $(cat "$log.entered")s); exits handled:" \
        "$(sed -n 's/^host: exits: \([0-9]*\) \(.*\)/\1 \2,/p' "$log" | tr '\n' ' ')"
    [ "$rc" = 0 ]; check $? "$name: exit status $rc (log: $log)"
    local pattern
    for pattern in 'init: reached /init' '\[PASS\] linux: booted to /init' 'host: [0-9]+ passed, 0 failed' "$@"; do
        if grep -Eq -- "$pattern" "$log"; then check 0 "$name: /$pattern/"
        else check 1 "$name: /$pattern/ not in the console output (log: $log)"; fi
    done
    if grep -q '^\[FAIL\]' "$log"; then
        check 1 "$name: failures reported:"; grep '^\[FAIL\]' "$log" | sed 's/^/    | /'
    fi
    [ "$rc" = 0 ] || tail -30 "$log" | sed 's/^/    | /'
    LAST_LINUX_TIME=$t
}

if [ -e "$LINUX_DIR/Image" ] && [ -e "$LINUX_DIR/initramfs.cpio.gz" ]; then
    LINUX_LINES=('\[PASS\] iomem: no System RAM' '\[PASS\] devmem 0x[0-9a-f]+ \(hypervisor memory\): SIGBUS'
                 '\[PASS\] virtio-blk' '\[PASS\] edu: DMA RAM -> edu -> RAM' '\[PASS\] control: reclaim gives the page back'
                 '\[PASS\] host: edu.s DMA at hypervisor memory faulted' 'init: [0-9]+ passed, 0 failed'
                 '\[PASS\] host: no exit the host caused allocated' '\[PASS\] host: every CPU.s EL2 stack stayed within')
    LINUX_EXTRA=$NOMSI linux_scenario linux72-1g "$QEMU" max,pauth-impdef=on 1G 1 "${LINUX_LINES[@]}" \
        "the host's DMA domain is a stage-1 mirror of its stage 2"
    with_hv=$LAST_LINUX_TIME
    bare=$(boot_timed "$LOGS/linux72-bare.log" "$QEMU" -M "$VIRT" -cpu max,pauth-impdef=on -m 1G -smp 1 -nographic \
             -kernel "$LINUX_DIR/Image" -initrd "$LINUX_DIR/initramfs.cpio.gz" "${LINUX_DEVICES[@]}" -append "$LINUX_APPEND $NOMSI")
    echo "linux: QEMU start to /init: ${with_hv}s under the hypervisor, ${bare}s without it (same kernel, initramfs, machine)"
    [ "$bare" != - ]; check $? "linux72-bare: the same kernel reaches /init without the hypervisor"
    LINUX_EXTRA=$NOMSI linux_scenario linux72-smp2-2g "$QEMU" max,pauth-impdef=on 2G 2 "${LINUX_LINES[@]}" '2 CPUs' \
        '\[PASS\] control: 10 shares from each of two CPUs at once' \
        "host: CPU 1 \\(MPIDR 0x1\\) enters the host at 0x[0-9a-f]+ through the hypervisor's entry"
    LINUX_EXTRA=$NOMSI linux_scenario linux72-a57 "$QEMU" cortex-a57 1G 1 "${LINUX_LINES[@]}"
    # Refusals before the host runs: each says why and ends with status 1.
    LOADER=(-device "loader,file=$LINUX_DIR/Image,addr=$LINUX_ADDR,force-raw=on")
    APPEND="hv.host=linux hv.kernel=$LINUX_ADDR" scenario linux72-no-image "$QEMU" 1 -M "$VIRT" -cpu "$CPU" -m "$MEM" -- \
        'host: no arm64 Image header at hv.kernel='
    APPEND="hv.host=linux" scenario linux72-no-kernel-address "$QEMU" 1 -M "$VIRT" -cpu "$CPU" -m "$MEM" "${LOADER[@]}" -- \
        'host: hv.host=linux needs hv.kernel=0x<address>'
    APPEND="hv.host=linux hv.kernel=0x41000000" scenario linux72-kernel-in-carve-out "$QEMU" 1 -M "$VIRT" -cpu "$CPU" -m "$MEM" \
        -device "loader,file=$LINUX_DIR/Image,addr=0x41000000,force-raw=on" -- \
        "host: the kernel's placement breaks the boot protocol or overlaps the hypervisor's memory"
    APPEND="hv.host=linux hv.kernel=$LINUX_ADDR" scenario linux72-no-smmu "$QEMU" 1 -M virt,virtualization=on -cpu "$CPU" -m "$MEM" "${LOADER[@]}" -- \
        "host: the DTB describes no arm,smmu-v3: the host's DMA could reach the hypervisor, refusing"
    if [ -x "$QEMU_S2" ]; then
        linux_scenario linux-s2-1g "$QEMU_S2" max,pauth-impdef=on 1G 1 "${LINUX_LINES[@]}" \
            "the host's DMA domain shares its stage 2"
    fi
else
    check 1 "the Linux host's files are in $LINUX_DIR (make linux)"
fi

echo "qemu: $passed passed, $failed failed"
[ "$failed" = 0 ]
