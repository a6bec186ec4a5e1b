#!/usr/bin/env bash
# The QEMU boot test: boots the image in several machine configurations, each
# with a 20-second timeout, and checks the exit status, the verdict line and
# the lines the image must print. Ends with `qemu: N passed, N failed`.
#
# QEMU runs without -semihosting unless a scenario asks for it: a guest at EL1
# can issue `hlt #0xf000` as well as the hypervisor can, and QEMU cannot limit
# semihosting to EL2 (-semihosting-config userspace=off only excludes EL0), so
# with it on, a guest could end the run with status 0 and no verdict. The
# image then powers off through PSCI SYSTEM_OFF, QEMU's status is 0 whatever
# happened, and each scenario's verdict line is what decides. Only scenarios
# that stop before any guest runs and need the exit status as their one
# channel (no console) set SEMIHOSTING=1.
#
#   scripts/qemu-test.sh build/hypervisor.bin
# Environment: QEMU (Debian's 7.2 by default), QEMU_S2 (a QEMU >= 9.2 whose
# SMMU has stage 2; its scenarios run when the binary exists), CPU, MEM,
# KEEP_LOGS=dir to keep each boot's console output, ONLY=regex to run only the
# scenarios whose names match (for a quick check while editing).
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

# scenario <name> <qemu> <expected exit> <verdict> <qemu args...> -- <regex>...
# <verdict> is the line that says how the run ended (`board: N passed, 0 failed`
# for a passing boot, the expected message otherwise); it is required on top
# of the exit status. An empty verdict is allowed only with SEMIHOSTING=1,
# where the exit status is itself the verdict (nothing to print on). A regex
# starting with `!` must not match. APPEND adds to the kernel command line.
selected() { [ -z "${ONLY:-}" ] || [[ $1 =~ $ONLY ]]; }

scenario() {
    local name=$1 qemu=$2 want=$3 verdict=$4; shift 4
    selected "$name" || return 0
    local args=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
    shift
    local log="$LOGS/$name.log"
    local boot=(-append "${APPEND:-}")
    [ "${SEMIHOSTING:-0}" = 1 ] && boot=(-semihosting -append "hv.exit=semihosting ${APPEND:-}")
    timeout "$TIMEOUT" "$qemu" "${args[@]}" -nographic "${boot[@]}" -kernel "$IMAGE" </dev/null >"$log" 2>&1
    local rc=$?
    if [ "$rc" = "$want" ]; then check 0 "$name: exit status $rc"
    else check 1 "$name: exit status $rc, expected $want (log: $log)"; sed 's/^/    | /' "$log" | tail -40; fi
    if [ -n "$verdict" ]; then
        if grep -Eq -- "$verdict" "$log"; then check 0 "$name: verdict /$verdict/"
        else check 1 "$name: verdict /$verdict/ not in the console output (log: $log)"; fi
    elif [ "${SEMIHOSTING:-0}" != 1 ]; then
        check 1 "$name: no verdict line to require, and no semihosting exit status to stand for one"
    fi
    local pattern
    for pattern in "$@"; do
        if [ "${pattern#!}" != "$pattern" ]; then
            if grep -Eq -- "${pattern#!}" "$log"; then check 1 "$name: /${pattern#!}/ must not be in the output (log: $log)"
            else check 0 "$name: no /${pattern#!}/"; fi
        elif grep -Eq -- "$pattern" "$log"; then check 0 "$name: /$pattern/"
        else check 1 "$name: /$pattern/ not in the console output (log: $log)"; fi
    done
    if [ "$verdict" = "$PASSED" ] && grep -q '^\[FAIL\]' "$log"; then
        check 1 "$name: the image reported failures:"; grep '^\[FAIL\]' "$log" | sed 's/^/    | /'
    fi
}
PASSED='board: [1-9][0-9]* passed, 0 failed'

# in_order <name> <earlier> <later>: in <name>'s log, the first line matching
# <earlier> comes before the first line matching <later> (both must be there).
in_order() {
    local name=$1 earlier=$2 later=$3
    selected "$name" || return 0
    local log="$LOGS/$name.log" a b
    a=$(grep -En -m1 -- "$earlier" "$log" | cut -d: -f1)
    b=$(grep -En -m1 -- "$later" "$log" | cut -d: -f1)
    if [ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ]; then check 0 "$name: /$earlier/ before /$later/"
    else check 1 "$name: /$earlier/ (line ${a:-none}) not before /$later/ (line ${b:-none}) (log: $log)"; fi
}
# Every SMMU aborts incoming DMA before the first PCI config access wakes a device.
SMMU_BEFORE_PCI=('^smmu: enabled with every StreamID invalid' '^pcie?: ')

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
           '\[PASS\] guest: a stage-2 translation fault is served'
           '\[PASS\] guest: its write to hypervisor memory came back as a synchronous external abort'
           '\[PASS\] guest: its read of an unmapped IPA came back as a synchronous external abort'
           '\[PASS\] DMA before attach: the SMMU aborts edu.s write')
COMMON_S1=('running at EL2' 'stage 1: yes, stage 2: no' 'mode: stage-1 IOMMU table mirrored from the P2M'
           "${DMA_LINES[@]}")

# The README's `make run`: QEMU 7.2, stage-1-only SMMU, edu behind the default NIC.
scenario qemu72-default "$QEMU" 0 "$PASSED" -M "$VIRT" -cpu "$CPU" -m "$MEM" -device edu -- \
    "${COMMON_S1[@]}" 'pci 00:02\.0 1234:11e8 .*streamid 0x10' 'pci 00:01\.0 1af4:1000'
in_order qemu72-default "${SMMU_BEFORE_PCI[@]}"
# No default NIC: edu moves to 00:01.0 (StreamID 0x08): nothing may assume the slot.
scenario qemu72-nodefaults "$QEMU" 0 "$PASSED" -M "$VIRT" -cpu "$CPU" -m 2G -smp 2 -nic none -device edu -- \
    "${COMMON_S1[@]}" 'pci 00:01\.0 1234:11e8 .*streamid 0x8' 'memory: 0x40000000 \+ 0x80000000'
# A v8.0 CPU (no LSE, 44-bit PA), GICv3, 512 MiB.
scenario qemu72-a57-gicv3 "$QEMU" 0 "$PASSED" -M "$VIRT,gic-version=3" -cpu cortex-a57 -m 512M -device edu -- \
    "${COMMON_S1[@]}" 'memory: 0x40000000 \+ 0x20000000'
# RAM that ends inside a 1 GiB block: the EL2 map splits that block into 2 MiB blocks.
scenario qemu72-1536m "$QEMU" 0 "$PASSED" -M "$VIRT" -cpu "$CPU" -m 1536M -device edu -- \
    "${COMMON_S1[@]}" 'memory: 0x40000000 \+ 0x60000000' '1 split blocks'
# A device tree given with -dtb (make run DTB=...), here one dumped from QEMU itself.
DUMPED_DTB=$(dirname "$0")/../Tests/PlatformTests/DTBs/virt-m2g-smp2.dtb
scenario qemu72-dtb-file "$QEMU" 0 "$PASSED" -M "$VIRT" -cpu "$CPU" -m 2G -smp 2 -device edu -dtb "$DUMPED_DTB" -- \
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
    scenario qemu72-noncoherent-smmu "$QEMU" 0 "$PASSED" -M "$VIRT" -cpu "$CPU" -m "$MEM" -device edu -dtb "$LOGS/noncoherent-72.dtb" -- \
        "${COMMON_S1[@]}" 'smmu: arm,smmu-v3 at 0x[0-9a-f]+ \+ 0x[0-9a-f]+, not dma-coherent'
else
    check 1 "qemu72-noncoherent-smmu: could not build the non-coherent DTB (dtc)"
fi
# No SMMU in the machine (nor in its DTB): the image says so and checks the rest.
scenario qemu72-no-smmu "$QEMU" 0 "$PASSED" -M virt,virtualization=on -cpu "$CPU" -m "$MEM" -device edu -- \
    'describes no arm,smmu-v3' '(no iommu-map entry)' '\[PASS\] stage 2: a 2 MiB block'
# An unexpected exception at EL2 is reported (class, ESR/ELR/FAR) and ends the run.
SEMIHOSTING=1 APPEND=hv.selftest=exception scenario qemu72-exception-report "$QEMU" 2 'board: 2 passed, 1 failed' -M "$VIRT" -cpu "$CPU" -m "$MEM" -- \
    'exception: unexpected synchronous from EL2: data abort \(EL2\)' 'ESR_EL2 0x9[67][0-9a-f]{6} +ELR_EL2 0x402[0-9a-f]{5} +FAR_EL2 0x20000000000' \
    'board: 2 passed, 1 failed'
# Started at EL1 it must refuse, clearly, and stop on its own.
SEMIHOSTING=1 scenario qemu72-el1-refusal "$QEMU" 3 'refusing to run at EL1' -M virt,iommu=smmuv3 -cpu "$CPU" -m "$MEM" -- \
    'refusing to run at EL1'

# ---- Hostile input: device trees, a guest's semihosting call, faults in the handler ----
# Each ends within seconds; a short timeout keeps a regression from costing 20 s each.
# Device-tree variants: QEMU's own dump, decompiled with dtc, one property edited.
# A rejection is printed with the node and property it names when the console
# survives; otherwise the exit status (4, through semihosting) is the report.
HOSTILE_TIMEOUT=${HOSTILE_TIMEOUT:-8}
hostile_dtb() {  # hostile_dtb <out.dtb> <sed expression>
    [ -f "$LOGS/hostile-base.dts" ] || {
        "$QEMU" -M "$VIRT,dumpdtb=$LOGS/hostile-base.dtb" -cpu "$CPU" -m "$MEM" -device edu -nographic >/dev/null 2>&1 &&
            dtc -q -I dtb -O dts -o "$LOGS/hostile-base.dts" "$LOGS/hostile-base.dtb"; } || return 1
    sed -E "$2" "$LOGS/hostile-base.dts" | dtc -q -I dts -O dtb -o "$1" - || return 1
    ! cmp -s "$1" "$LOGS/hostile-base.dtb"   # the edit must have changed something
}
hostile() {  # hostile <name> <sed expression> <expected exit> <verdict> [regex...]
    local name=$1 edit=$2 want=$3 verdict=$4; shift 4
    selected "$name" || return 0
    if hostile_dtb "$LOGS/$name.dtb" "$edit"; then
        TIMEOUT=$HOSTILE_TIMEOUT scenario "$name" "$QEMU" "$want" "$verdict" \
            -M "$VIRT" -cpu "$CPU" -m "$MEM" -device edu -dtb "$LOGS/$name.dtb" -- '!board: ' "$@"
    else
        check 1 "$name: could not build the device tree variant (dtc, or the edit matched nothing)"
    fi
}
hostile dtb-smmu-reg-size-0 '/smmuv3@/,/};/ s/reg = <0x00 0x9050000 0x00 0x20000>/reg = <0x00 0x9050000 0x00 0x00>/' 0 \
    'dtb: rejected: device registers of size 0 \(node /smmuv3@9050000\) \(property reg\)'
# Extra RAM goes in a node QEMU leaves alone: it replaces every /memory@ node
# of a -dtb with its own, but keeps any other node with device_type "memory".
extra_bank() { echo "s|^\tmemory@40000000 \{|\tram@$1 {\n\t\tdevice_type = \"memory\";\n\t\treg = <$2>;\n\t};\n\n&|"; }
# The issue's 2^64 - 4 GiB bank: without the PARange check it spun for minutes.
hostile dtb-bank-beyond-parange "$(extra_bank ffffffff00000000 '0xffffffff 0x00 0x00 0x10000000')" 0 \
    'dtb: rejected: memory bank beyond the CPU.s physical address range \(property reg\): 0xffffffff00000000'
hostile dtb-banks-overlap "$(extra_bank 7ffff000 '0x00 0x7ffff000 0x00 0x2000')" 0 \
    'dtb: rejected: memory banks overlap \(property reg\): 0x7ffff000'
hostile dtb-bank-over-device "$(extra_bank 9000000 '0x00 0x9000000 0x00 0x1000')" 0 \
    'dtb: rejected: memory bank covers device registers \(property reg\): 0x9000000'
# StreamID base 0xffffff00 + 0x10000 requesters: the last ones would be StreamID 0 and up.
hostile dtb-iommu-map-wraps 's/iommu-map = <0x00 (0x[0-9a-f]+) 0x00 0x10000>/iommu-map = <0x00 \1 0xffffff00 0x10000>/' 0 \
    'dtb: rejected: StreamID or requester ID range wraps past 2\^32 \(node /pcie@10000000\) \(property iommu-map\)'
# A one-cell property of the wrong length on a bus the platform reads: the
# printer names it from the blob (any one-cell property, not a fixed list).
hostile dtb-size-cells-bad-length '/^\tpcie@10000000 \{/,/^\t\};/ s/#size-cells = <0x02>;/#size-cells = <0x02 0x00>;/' 0 \
    'dtb: rejected: a one-cell property is not 4 bytes \(node /pcie@10000000\) \(property #size-cells\): 0x8'
# 4 KiB of ECAM: less than one bus's configuration space (1 MiB).
hostile dtb-ecam-tiny 's/reg = <0x40 0x10000000 0x00 0x10000000>/reg = <0x40 0x10000000 0x00 0x1000>/' 0 \
    'dtb: rejected: ECAM smaller than one bus \(1 MiB\) \(node /pcie@10000000\) \(property reg\): 0x1000'
# #address-cells = 3 on a bus: the SMMU moved under a simple-bus that says so.
# (Not at the root: QEMU writes its own /memory node into a -dtb with the
# root's cells and refuses to start, "couldn't add /memory@40000000 node".)
hostile dtb-bus-address-cells-3 '/^\tsmmuv3@9050000 \{/,/^\t\};/ s|^\t\};|\t};\n\t};|; s|^\tsmmuv3@9050000 \{|\tbus@9050000 {\n\t\tcompatible = "simple-bus";\n\t\t#address-cells = <0x03>;\n\t\t#size-cells = <0x02>;\n\t\tranges;\n\n&|' 0 \
    'dtb: rejected: unsupported cell count \(node /bus@9050000/smmuv3@9050000\) \(property #address-cells\): 0x3'
# No console left to print on: the exit status is the report.
SEMIHOSTING=1 hostile dtb-stdout-path-names-nothing 's|stdout-path = "[^"]*"|stdout-path = "/nothing@0"|' 4 ''
# A console `reg` one cell short of a (2, 2) tuple.
SEMIHOSTING=1 hostile dtb-console-reg-short '/pl011@9000000 \{/,/};/ s/reg = <0x00 0x9000000 0x00 0x1000>/reg = <0x00 0x9000000 0x00>/' 4 ''
# A blob the parser refuses as a whole (40 nodes nested inside each other,
# deeper than FlattenedDeviceTree.maxDepth): no tree, so no console and no
# bootargs. The image tries a guarded semihosting exit with status 4 before
# PSCI; with -semihosting that is the report.
nested_nodes() {  # a sed expression: <depth> nested nodes before /chosen
    local open='' close='' i
    for i in $(seq 1 "$1"); do open+="\\tn$i {\\n"; close+="\\t};\\n"; done
    echo "s|^\\tchosen \\{|$open$close&|"
}
SEMIHOSTING=1 hostile dtb-nesting-too-deep "$(nested_nodes 40)" 4 ''
# No DTB at all (x0 = 0: the image started by QEMU's loader device, not
# -kernel): the same guarded exit, status 4.
if selected qemu72-no-dtb; then
    timeout "$HOSTILE_TIMEOUT" "$QEMU" -M "$VIRT" -cpu "$CPU" -m "$MEM" -nographic -semihosting \
        -device "loader,file=$IMAGE,addr=0x40200000,cpu-num=0,force-raw=on" </dev/null >"$LOGS/qemu72-no-dtb.log" 2>&1
    rc=$?; [ "$rc" = 4 ]; check $? "qemu72-no-dtb: exit status $rc, expected 4 (log: $LOGS/qemu72-no-dtb.log)"
fi
# The same probe without -semihosting: the HLT is an undefined instruction at
# EL2, caught (Probe), and the image goes on to PSCI SYSTEM_OFF with no exception report.
APPEND=hv.selftest=semihosting-probe TIMEOUT=$HOSTILE_TIMEOUT scenario qemu72-semihosting-probe "$QEMU" 0 \
    'power: no semihosting here \(the HLT was an undefined instruction\); PSCI SYSTEM_OFF next' \
    -M "$VIRT" -cpu "$CPU" -m "$MEM" -- 'selftest: powering off as for a device tree with no console' '!exception: ' '!board: '
# Once the guest has run, the unasked semihosting exit is never tried (with
# -semihosting on, the guest could have made the same call).
APPEND=hv.selftest=semihosting-probe-after-guest TIMEOUT=$HOSTILE_TIMEOUT scenario qemu72-semihosting-probe-after-guest \
    "$QEMU" 0 "$PASSED" -M "$VIRT" -cpu "$CPU" -m "$MEM" -- \
    'selftest: asking for the unasked semihosting exit after the guest has run' '!power: no semihosting here' '!exception: '

# A second SMMU node, first in the tree: one where nothing answers, one over
# a GPIO block whose registers read as nonsense ID registers. Each is
# reported and skipped; the real SMMU is still brought up and used.
extra_smmu() { echo "s|^\tmemory@40000000 \{|\tsmmuv3@$1 {\n\t\tcompatible = \"arm,smmu-v3\";\n\t\treg = <$2>;\n\t\t#iommu-cells = <0x01>;\n\t\tdma-coherent;\n\t};\n\n&|"; }
for variant in "smmu-nothing-answers 9100000 0x00 0x9100000 0x00 0x20000|nothing answers at this address .*: skipped" \
               "smmu-id-nonsense 9030000 0x00 0x9030000 0x00 0x1000|ID registers this driver cannot drive \(.*\): skipped"; do
    set -- ${variant%%|*}
    name=dtb-$1 unit=$2; shift 2
    if hostile_dtb "$LOGS/$name.dtb" "$(extra_smmu "$unit" "$*")"; then
        TIMEOUT=$HOSTILE_TIMEOUT scenario "$name" "$QEMU" 0 "$PASSED" -M "$VIRT" -cpu "$CPU" -m "$MEM" -device edu \
            -dtb "$LOGS/$name.dtb" -- "smmu: arm,smmu-v3 at 0x$unit" "${variant#*|}" '\[PASS\] DMA through the SMMU'
    else
        check 1 "$name: could not build the device tree variant"
    fi
done
# No edu: the SMMU is still enabled (aborting) before PCI enumeration.
TIMEOUT=$HOSTILE_TIMEOUT scenario qemu72-no-edu "$QEMU" 0 "$PASSED" -M "$VIRT" -cpu "$CPU" -m "$MEM" -- \
    'smmu: enabled with every StreamID invalid: incoming DMA aborts' 'no QEMU edu device'

# W^X in the EL2 map: a store to .text and a call into the heap both fault at EL2.
SEMIHOSTING=1 APPEND=hv.selftest=write-text TIMEOUT=$HOSTILE_TIMEOUT scenario qemu72-wx-write-text "$QEMU" 2 \
    'ESR_EL2 0x9[67][0-9a-f]{4}4f +ELR_EL2 0x402[0-9a-f]{5} +FAR_EL2 0x402[0-9a-f]{5}' -M "$VIRT" -cpu "$CPU" -m "$MEM" -- \
    'W\^X: \.text read-only and executable' 'exception: unexpected synchronous from EL2: data abort \(EL2\)' \
    '!the store to \.text went through' '\[PASS\] W\^X: SCTLR_EL2\.WXN \(bit 19\) reads back set'
# .rodata is read-only too: a store to its first word faults (permission, level 3, write).
SEMIHOSTING=1 APPEND=hv.selftest=write-rodata TIMEOUT=$HOSTILE_TIMEOUT scenario qemu72-wx-write-rodata "$QEMU" 2 \
    'ESR_EL2 0x9[67][0-9a-f]{4}4f +ELR_EL2 0x402[0-9a-f]{5} +FAR_EL2 0x402[0-9a-f]{5}' -M "$VIRT" -cpu "$CPU" -m "$MEM" -- \
    'selftest: storing to \.rodata at 0x402[0-9a-f]{5}' 'exception: unexpected synchronous from EL2: data abort \(EL2\)' \
    '!the store to \.rodata went through'
SEMIHOSTING=1 APPEND=hv.selftest=exec-data TIMEOUT=$HOSTILE_TIMEOUT scenario qemu72-wx-exec-data "$QEMU" 2 \
    'exception: unexpected synchronous from EL2: instruction abort \(EL2\)' -M "$VIRT" -cpu "$CPU" -m "$MEM" -- \
    'ESR_EL2 0x86[0-9a-f]{4}0f' '!the heap executed'

# Unbounded recursion: the main stack runs into its unmapped guard page, and the
# handler, on its own exception stack, reports it.
SEMIHOSTING=1 APPEND=hv.selftest=stack-overflow TIMEOUT=$HOSTILE_TIMEOUT scenario qemu72-stack-overflow "$QEMU" 2 \
    'the EL2 stack overflowed into its guard page' -M "$VIRT" -cpu "$CPU" -m "$MEM" -- \
    'stack guard page at 0x[0-9a-f]+ unmapped' 'exception: unexpected synchronous from EL2: data abort \(EL2\)'

# The same on a second CPU, started through the hypervisor's CPU entry (PSCI
# CPU_ON, slot 1): its own guard page stops it, its own exception stack reports it.
SEMIHOSTING=1 APPEND=hv.selftest=stack-overflow-cpu1 TIMEOUT=$HOSTILE_TIMEOUT scenario qemu72-stack-overflow-cpu1 "$QEMU" 2 \
    "CPU 1's EL2 stack overflowed into its guard page" -M "$VIRT" -cpu "$CPU" -m "$MEM" -smp 2 -- \
    'per-CPU EL2 stacks and exception stacks at 0x[0-9a-f]+ \+ 0x[0-9a-f]+, a guard page unmapped below each' \
    'selftest: CPU 1 recurses on its own EL2 stack' 'exception: unexpected synchronous from EL2: data abort \(EL2\)'

# A Swift trap at EL2 (checked UInt64 addition overflowing: BRK) is reported with
# the function it hit, from the image's own address -> name table.
SEMIHOSTING=1 APPEND=hv.selftest=swift-trap TIMEOUT=$HOSTILE_TIMEOUT scenario qemu72-swift-trap "$QEMU" 2 \
    'trap at 0x[0-9a-f]+ \(image offset 0x[0-9a-f]+\) in swiftTrapSelfTest\(_:\)\+0x[0-9a-f]+' -M "$VIRT" -cpu "$CPU" -m "$MEM" -- \
    'exception: unexpected synchronous from EL2: BRK \(Swift trap\)'

# A guest's semihosting SYS_EXIT(0) must not end the run as a success: QEMU
# runs without -semihosting, the hlt is UNDEFINED at EL1 (EC 0 at the guest's
# own vector, which the hypervisor did not inject), and that is reported as a failure.
APPEND=hv.selftest=guest-semihosting TIMEOUT=$HOSTILE_TIMEOUT scenario qemu72-guest-semihosting "$QEMU" 0 \
    'board: [0-9]+ passed, 1 failed' -M "$VIRT" -cpu "$CPU" -m "$MEM" -device edu -- \
    'did not inject: ESR_EL1 0x2000000 ' 'exception: unexpected synchronous from lower EL \(AArch64\)' \
    '!board: [0-9]+ passed, 0 failed'
# A guest that jumps to an IPA nothing maps: each fetch comes back as an
# instruction abort (EC 0x21) its vector steps past, into the next one; after
# 8 injections the hypervisor stops it as a failure instead of looping.
APPEND=hv.selftest=guest-fetch-abort TIMEOUT=$HOSTILE_TIMEOUT scenario qemu72-guest-fetch-abort "$QEMU" 0 \
    'board: [0-9]+ passed, 1 failed' -M "$VIRT" -cpu "$CPU" -m "$MEM" -device edu -- \
    'took the injected abort: ESR_EL1 0x86000010 FAR_EL1 0x80003000,' 'took the injected abort: ESR_EL1 0x86000010 FAR_EL1 0x8000301c,' \
    '!FAR_EL1 0x80003020' 'exception: unexpected synchronous from lower EL \(AArch64\): instruction abort' \
    '!board: [0-9]+ passed, 0 failed'
# 32,768 report hypercalls: counted in fixed storage, the run passes.
APPEND=hv.selftest=report-flood scenario qemu72-report-flood "$QEMU" 0 "$PASSED" -M "$VIRT" -cpu "$CPU" -m "$MEM" -device edu -- \
    '\[PASS\] guest: 32768 more report hypercalls counted in fixed storage'
# A fault inside the exception handler: reported once, then the run stops.
SEMIHOSTING=1 APPEND=hv.selftest=nested-exception TIMEOUT=$HOSTILE_TIMEOUT scenario qemu72-nested-exception "$QEMU" 2 \
    'exception: fault inside the EL2 exception handler: ESR_EL2 0x9[67][0-9a-f]{6} .*FAR_EL2 0x20000000000 .*; stopping' \
    -M "$VIRT" -cpu "$CPU" -m "$MEM" -- '!exception: unexpected' \
    'fault at 0x[0-9a-f]+ \(image offset 0x[0-9a-f]+\) in static ExceptionLatch.enter'

if [ -x "$QEMU_S2" ]; then
    COMMON_S2=('running at EL2' 'stage 1: yes, stage 2: yes' 'mode: stage 2 shares the P2M'
               "${DMA_LINES[@]}" 'F_TRANSLATION .* stage 2')
    scenario qemu-s2-default "$QEMU_S2" 0 "$PASSED" -M "$VIRT" -cpu "$CPU" -m "$MEM" -device edu -- \
        "${COMMON_S2[@]}" 'pci 00:02\.0 1234:11e8 .*streamid 0x10'
    in_order qemu-s2-default "${SMMU_BEFORE_PCI[@]}"
    scenario qemu-s2-nodefaults "$QEMU_S2" 0 "$PASSED" -M "$VIRT" -cpu "$CPU" -m 3G -smp 2 -nic none -device edu -- \
        "${COMMON_S2[@]}" 'pci 00:01\.0 1234:11e8 .*streamid 0x8'
    # The same QEMU as an older machine type has a stage-1-only SMMU again.
    scenario qemu-s2-virt91 "$QEMU_S2" 0 "$PASSED" -M "virt-9.1,virtualization=on,iommu=smmuv3" -cpu "$CPU" -m "$MEM" -device edu -- \
        "${COMMON_S1[@]}"
    if noncoherent_dtb "$QEMU_S2" "$LOGS/noncoherent-s2.dtb"; then
        scenario qemu-s2-noncoherent-smmu "$QEMU_S2" 0 "$PASSED" -M "$VIRT" -cpu "$CPU" -m "$MEM" -device edu -dtb "$LOGS/noncoherent-s2.dtb" -- \
            'stage 1: yes, stage 2: yes' 'mode: stage-1 IOMMU table mirrored from the P2M' 'not dma-coherent'
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
    selected "$name" || return 0
    local runs_at=${RUNS_AT:-$address}
    local log="$LOGS/$name.log" rc=0
    "$(dirname "$0")/uboot-boot.py" "$address" "$UBOOT_TIMEOUT" "$qemu" -M "$VIRT" -cpu "$CPU" -m 1G -nographic \
        -bios "$UBOOT" -device "loader,file=$IMAGE,addr=$address,force-raw=on" -device edu \
        >"$log" 2>&1 </dev/null || rc=$?
    if [ "$rc" = 0 ]; then check 0 "$name: exit status 0"
    else check 1 "$name: exit status $rc, expected 0 (log: $log)"; sed 's/^/    | /' "$log" | tail -40; fi
    local pattern
    for pattern in "image: $(printf '0x%x' "$runs_at") \+" "$PASSED" "$@"; do
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
scenario qemu72-absent-smmu "$QEMU" 0 "$PASSED" -M virt,virtualization=on -cpu "$CPU" -m 1G -device edu -dtb "$DUMPED_DTB" -- \
    'smmu: nothing answers at this address' 'pci 00:02\.0 1234:11e8'
scenario qemu72-absent-ecam "$QEMU" 0 "$PASSED" -M "$VIRT,highmem=off" -cpu "$CPU" -m 1G -device edu -dtb "$DUMPED_DTB" -- \
    'pcie: the ECAM the DTB describes at 0x4010000000 does not answer' 'stage 1: yes, stage 2: no'

# ---- Raspberry Pi 4B (QEMU 10's raspi4b) with the board's own device tree --
# Debian's bcm2711-rpi-4-b.dtb: RAM at 0, devices at bus addresses that
# /soc's ranges translate, the console on the BCM2835 mini UART (serial1,
# QEMU's second -serial), no SMMU and no PCIe in QEMU's model: the checks
# that apply run, the rest are reported as not applying.
if [ -x "$QEMU_S2" ]; then
    RPI_DTB=${RPI_DTB:-$(echo "$("$(dirname "$0")/debian-arm64.sh" kernel)"/usr/lib/linux-image-*/broadcom/bcm2711-rpi-4-b.dtb)}
    if [ -r "$RPI_DTB" ]; then
        # The board's DTB has no /psci node, so the image can only stop through
        # semihosting here; the verdict line is still what the scenario requires.
        SEMIHOSTING=1 scenario raspi4b "$QEMU_S2" 0 "$PASSED" -M raspi4b -serial null -serial mon:stdio -dtb "$RPI_DTB" -- \
            'running at EL2' 'memory: 0x0 \+' 'console: ns16550 \(reg-shift 2, reg-io-width 4\) at 0xfe215040' \
            'describes no arm,smmu-v3' 'no pci-host-ecam-generic bridge: the PCI checks do not apply' \
            '\[PASS\] stage 2: a 2 MiB block' '\[PASS\] guest: a stage-2 translation fault is served'
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
# Every Linux run takes MSIs: on QEMU 7.2 the host's DMA domain is a stage-1
# mirror that maps no MMIO except the GIC's MSI doorbell page (the DTB's
# msi-map controller), on QEMU 10 the shared stage 2 maps the doorbell as
# Device memory.
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
    selected "$name" || return 0
    local log="$LOGS/$name.log" t rc
    # No -semihosting: Linux runs at EL1 and could end the run with a hlt
    # #0xf000 of its own; the hypervisor powers off through PSCI and its
    # "host: N passed, 0 failed" line is the verdict.
    t=$(boot_timed "$log" "$qemu" -M "$VIRT" -cpu "$cpu" -m "$mem" -smp "$smp" -nographic \
          -kernel "$IMAGE" -device "loader,file=$LINUX_DIR/Image,addr=$LINUX_ADDR,force-raw=on" \
          -initrd "$LINUX_DIR/initramfs.cpio.gz" "${LINUX_DEVICES[@]}" \
          -append "hv.host=linux hv.kernel=$LINUX_ADDR $LINUX_APPEND")
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
                 '\[PASS\] host: no exit the host caused allocated' '\[PASS\] host: every CPU.s EL2 stack stayed within'
                 'init: virtio-blk interrupts are MSIs')
    linux_scenario linux72-1g "$QEMU" max,pauth-impdef=on 1G 1 "${LINUX_LINES[@]}" \
        "the host's DMA domain is a stage-1 mirror of its stage 2" 'host: MSI doorbell reachable by DMA at 0x8020000 '
    with_hv=${LAST_LINUX_TIME:--}
    if selected linux72-bare; then
    bare=$(boot_timed "$LOGS/linux72-bare.log" "$QEMU" -M "$VIRT" -cpu max,pauth-impdef=on -m 1G -smp 1 -nographic \
             -kernel "$LINUX_DIR/Image" -initrd "$LINUX_DIR/initramfs.cpio.gz" "${LINUX_DEVICES[@]}" -append "$LINUX_APPEND")
    echo "linux: QEMU start to /init: ${with_hv}s under the hypervisor, ${bare}s without it (same kernel, initramfs, machine)"
    [ "$bare" != - ]; check $? "linux72-bare: the same kernel reaches /init without the hypervisor"
    fi
    linux_scenario linux72-smp2-2g "$QEMU" max,pauth-impdef=on 2G 2 "${LINUX_LINES[@]}" '2 CPUs' \
        '\[PASS\] control: 10 shares from each of two CPUs at once' \
        "host: CPU 1 \\(MPIDR 0x1\\) enters the host at 0x[0-9a-f]+ through the hypervisor's entry"
    linux_scenario linux72-a57 "$QEMU" cortex-a57 1G 1 "${LINUX_LINES[@]}"
    # GICv3: the MSI doorbell is the ITS's GITS_TRANSLATER page, not a v2m frame.
    VIRT=$VIRT,gic-version=3 linux_scenario linux72-gicv3 "$QEMU" max,pauth-impdef=on 1G 1 "${LINUX_LINES[@]}" \
        'host: MSI doorbell reachable by DMA at 0x8090000 '
    # Refusals before the host runs: each says why and ends with status 1
    # (semihosting is safe here: nothing below EL2 ever runs).
    LOADER=(-device "loader,file=$LINUX_DIR/Image,addr=$LINUX_ADDR,force-raw=on")
    SEMIHOSTING=1 APPEND="hv.host=linux hv.kernel=$LINUX_ADDR" scenario linux72-no-image "$QEMU" 1 \
        'host: no arm64 Image header at hv.kernel=' -M "$VIRT" -cpu "$CPU" -m "$MEM" --
    SEMIHOSTING=1 APPEND="hv.host=linux" scenario linux72-no-kernel-address "$QEMU" 1 \
        'host: hv.host=linux needs hv.kernel=0x<address>' -M "$VIRT" -cpu "$CPU" -m "$MEM" "${LOADER[@]}" --
    SEMIHOSTING=1 APPEND="hv.host=linux hv.kernel=0x41000000" scenario linux72-kernel-in-carve-out "$QEMU" 1 \
        "host: the kernel's placement breaks the boot protocol or overlaps the hypervisor's memory" \
        -M "$VIRT" -cpu "$CPU" -m "$MEM" -device "loader,file=$LINUX_DIR/Image,addr=0x41000000,force-raw=on" --
    SEMIHOSTING=1 APPEND="hv.host=linux hv.kernel=$LINUX_ADDR" scenario linux72-no-smmu "$QEMU" 1 \
        "host: the DTB describes no arm,smmu-v3: the host's DMA could reach the hypervisor, refusing" \
        -M virt,virtualization=on -cpu "$CPU" -m "$MEM" "${LOADER[@]}" --
    # EL2 faults while serving the host's first SMCCC exit: the fault runs on the
    # hypervisor's exception stack (SP_EL0 switched from Linux's task pointer,
    # which the frame keeps) and is reported, instead of pushing a frame
    # through Linux's pointer and recursing.
    APPEND="hv.host=linux hv.kernel=$LINUX_ADDR hv.selftest=host-exit-fault" TIMEOUT=40 scenario linux72-host-exit-fault \
        "$QEMU" 0 'exception: unexpected synchronous from EL2: data abort \(EL2\)' -M "$VIRT" -cpu max,pauth-impdef=on \
        -m "$MEM" "${LOADER[@]}" -initrd "$LINUX_DIR/initramfs.cpio.gz" -- \
        "selftest: serving the host's SMCCC exit with its SP_EL0 0xffff[0-9a-f]+ saved" \
        'fault at 0x[0-9a-f]+ \(image offset 0x[0-9a-f]+\) in static LinuxHost\.exit'
    if [ -x "$QEMU_S2" ]; then
        linux_scenario linux-s2-1g "$QEMU_S2" max,pauth-impdef=on 1G 1 "${LINUX_LINES[@]}" \
            "the host's DMA domain shares its stage 2"
    fi
else
    check 1 "the Linux host's files are in $LINUX_DIR (make linux)"
fi

echo "qemu: $passed passed, $failed failed"
[ "$failed" = 0 ]
