# Hypervisor memory-protection component: board image (Embedded Swift) and host tests.
#
#   make / make image   build/hypervisor.elf and build/hypervisor.bin (arm64 Image)
#   make run            boot it on QEMU virt at EL2 with an SMMUv3 and the edu device
#   make test           swift test (XCTest), the device tree corpus, then the QEMU boot scenarios
#   make test-corpus    the platform layer on every board DTB of Debian's arm64 kernel
#   make debug          QEMU halted with a gdb stub; prints the gdb command
#   make size           section sizes of the image; fails if .text > TEXT_LIMIT
#   make bench          release-mode benchmarks (host); HAFNIUM=results.txt adds ratios
#   make bench-hafnium  the comparison with Hafnium's mm.c: HAFNIUM_BENCH=bin ROUNDS=10 PIN=cpu
#   make fuzz           the device-tree fuzzer, 10^6 executions (host, release)
#   make deps           Debian packages the build and the QEMU runs need
#   make qemu-s2        build QEMU 10 (SMMUv3 with stage 2) under $(QEMU_S2_PREFIX)
#   make linux          Debian's arm64 kernel, the test initramfs and disk in build/linux
#   make run-linux      the hypervisor with Debian's kernel as its deprivileged host at EL1
#
# The Swift toolchain is the one whose swiftc is on PATH; clang and ld.lld come
# from the same toolchain.

SWIFTC_PATH   := $(shell command -v swiftc)
TOOLCHAIN_BIN := $(dir $(realpath $(SWIFTC_PATH)))
SWIFTC        := $(TOOLCHAIN_BIN)swiftc
CLANG         := $(TOOLCHAIN_BIN)clang
LLD           := $(TOOLCHAIN_BIN)ld.lld
OBJCOPY       := $(TOOLCHAIN_BIN)llvm-objcopy
OBJDUMP       := $(TOOLCHAIN_BIN)llvm-objdump
NM            := $(TOOLCHAIN_BIN)llvm-nm
DEMANGLE      := $(TOOLCHAIN_BIN)swift-demangle
# For scripts/check-no-fp.sh (binutils-aarch64-linux-gnu, scripts/deps.sh).
FP_OBJDUMP    ?= aarch64-linux-gnu-objdump

B := build

# ---- QEMU machine (override on the command line) --------------------------
QEMU      ?= qemu-system-aarch64
MACHINE   ?= virt,virtualization=on,iommu=smmuv3
CPU       ?= max
MEM       ?= 1G
SMP       ?= 1
DTB       ?=
DEVICES   ?= -device edu
QEMU_ARGS ?=
GDB_PORT  ?= 1234
LDFLAGS_EXTRA ?=
QEMU_S2_PREFIX ?= $(HOME)/.cache/qemu-s2
QEMU_S2   ?= $(QEMU_S2_PREFIX)/bin/qemu-system-aarch64

# No -semihosting: QEMU cannot limit it to EL2, so the image's guest could end
# the run with `hlt #0xf000` and status 0. The image powers off through PSCI
# SYSTEM_OFF, and `make run` takes its verdict from the `board:` line.
QEMU_CMD = $(QEMU) -M $(MACHINE) -cpu $(CPU) -m $(MEM) -smp $(SMP) -nographic \
           $(DEVICES) \
           -kernel $(B)/hypervisor.bin $(if $(DTB),-dtb $(DTB)) $(QEMU_ARGS)

# ---- Embedded Swift (EMBEDDED.md: the verified dual-build recipe) ---------
# Code size of the board image (`make size` checks .text against TEXT_LIMIT). Every
# module gets them: the libraries' serialized SIL is optimised when they are built.
# Each trades speed or debuggability for bytes, never a check; the benchmarks run
# on the host build (SwiftPM, -O), which none of this touches. Bytes saved as
# measured on the image when added (cumulative, in this order):
#   -mergeable-traps         one `brk #1` per function instead of one per failed
#                            check (every check still traps; ELR says which function,
#                            not which check)                                  -11 KiB
#   -sil-inline-threshold 0  no size-driven SIL inlining (@inline(__always) and
#                            @_transparent still inline)                       -42 KiB
#   -fomit-frame-pointer     no x29 frame chain (gdb backtraces need CFI or
#                            guesswork; nothing in the image walks frames)      -5 KiB
#   -inline-threshold=0, no SIL loop unrolling, outliner reruns                 -3 KiB
#   -enable-linkonceodr-outlining  the machine outliner also takes sequences
#                            from linkonce_odr functions (most specialisations;
#                            safe here: Hypervisor.o is the only Swift object)  -11 KiB
# (A change here rebuilds the Swift objects: they depend on the Makefile.)
SIZEFLAGS  := -Xfrontend -mergeable-traps -Xfrontend -sil-inline-threshold -Xfrontend 0 \
              -Xcc -fomit-frame-pointer -Xllvm -inline-threshold=0 \
              -Xllvm -sil-disable-pass=loop-unroll -Xllvm -machine-outliner-reruns=3 \
              -Xllvm -enable-linkonceodr-outlining
TEXT_LIMIT := 131072
SWIFTFLAGS := -swift-version 6 -target aarch64-none-none-elf \
              -enable-experimental-feature Embedded -wmo -parse-as-library -Osize \
              -Xcc -mgeneral-regs-only -Xfrontend -disable-stack-protector \
              -Xfrontend -function-sections $(SIZEFLAGS) -I $(B) -I Boot/include
CFLAGS     := --target=aarch64-none-elf -ffreestanding -fno-builtin -nostdlib \
              -mgeneral-regs-only -O2 -ffunction-sections -Wall -Werror -I Boot/include

# Portable modules in dependency order: name and the modules it imports. Package.swift
# states the same graph for the host build; scripts/check-module-graph.sh (run by
# `make test`) fails when the two drift apart.
AArch64_DEPS     :=
Translation_DEPS := AArch64
Platform_DEPS    := AArch64
Ownership_DEPS   := AArch64 Translation
SMMUv3_DEPS      := AArch64 Translation
HostExits_DEPS   := AArch64 Translation Ownership Platform
LIBS := AArch64 Translation Platform Ownership SMMUv3 HostExits

ARCH_HEADERS := Boot/include/arch.h Boot/include/el2_layout.h Boot/include/host.h Boot/include/module.modulemap

.PHONY: all image run test test-host test-corpus test-qemu fuzz model-long check-modules module-graph debug size bench bench-hafnium deps qemu-s2 clean \
        linux run-linux
all image: $(B)/hypervisor.bin

define swiftmodule_rule
$(B)/$(1).swiftmodule: $(wildcard Sources/$(1)/*.swift) $(foreach d,$($(1)_DEPS),$(B)/$(d).swiftmodule) Makefile | $(B)
	$(SWIFTC) $(SWIFTFLAGS) -module-name $(1) -emit-module -emit-module-path $$@ Sources/$(1)/*.swift
	@touch $$@   # swiftc leaves an unchanged module's mtime alone
endef
$(foreach m,$(LIBS),$(eval $(call swiftmodule_rule,$(m))))

$(B):
	mkdir -p $(B)

$(B)/Hypervisor.o: $(wildcard Sources/Hypervisor/*.swift) $(foreach m,$(LIBS),$(B)/$(m).swiftmodule) $(ARCH_HEADERS) Makefile
	@rm -f $@   # swiftc skips LLVM when the IR's hash matches the old object's, missing -Xllvm changes
	$(SWIFTC) $(SWIFTFLAGS) -module-name Hypervisor -c -o $@ Sources/Hypervisor/*.swift
	@touch $@

$(B)/%.o: Boot/%.S $(ARCH_HEADERS) | $(B)
	$(CLANG) $(CFLAGS) -c -o $@ $<
$(B)/%.o: Boot/%.c $(ARCH_HEADERS) | $(B)
	$(CLANG) $(CFLAGS) -c -o $@ $<

OBJS := $(B)/start.o $(B)/vectors.o $(B)/guest.o $(B)/wx.o $(B)/host.o $(B)/runtime.o $(B)/Hypervisor.o

# A position-independent executable linked at 0: Boot/start.S applies its
# R_AARCH64_RELATIVE relocations for the load address, and handles no other
# kind, so the link fails if any other dynamic relocation appears.
# Two links: the first (with Boot/symbols0.S's empty table) gives the code
# symbols, scripts/symbol-table.sh writes them as the address -> name table the
# second link carries (exception reports name the function); the build fails
# if any code symbol moved between the two. Then no FP/SIMD instruction may be
# in the image (scripts/check-no-fp.sh): the vectors save only x0-x30.
LINK = $(LLD) --gc-sections --pie $(LDFLAGS_EXTRA) -T Linker/hv.ld
$(B)/hypervisor.elf: $(OBJS) $(B)/symbols0.o Linker/hv.ld scripts/symbol-table.sh scripts/check-no-fp.sh
	$(LINK) -o $@.pass1 $(OBJS) $(B)/symbols0.o
	NM=$(NM) DEMANGLE=$(DEMANGLE) scripts/symbol-table.sh $@.pass1 $(B)/symbols.S
	$(CLANG) $(CFLAGS) -c -o $(B)/symbols.o $(B)/symbols.S
	$(LINK) -o $@.tmp $(OBJS) $(B)/symbols.o
	@if $(OBJDUMP) -R $@.tmp | awk 'NR > 5 && NF && $$2 != "R_AARCH64_RELATIVE"' | grep .; then \
	    echo "$@: dynamic relocations other than R_AARCH64_RELATIVE (Boot/start.S applies only those)"; exit 1; fi
	@$(NM) --defined-only $@.pass1 | awk '$$2 ~ /^[tT]$$/' >$@.syms1; $(NM) --defined-only $@.tmp | awk '$$2 ~ /^[tT]$$/' >$@.syms2; \
	    cmp -s $@.syms1 $@.syms2 || { echo "$@: code moved between the two links; the symbol table would lie"; exit 1; }
	OBJDUMP=$(FP_OBJDUMP) scripts/check-no-fp.sh $@.tmp
	@rm -f $@.pass1 $@.syms1 $@.syms2
	@mv $@.tmp $@

$(B)/hypervisor.bin: $(B)/hypervisor.elf
	$(OBJCOPY) -O binary $< $@
	@printf 'image: %s (%s bytes)\n' $@ $$(stat -c %s $@)

# ---- running ----------------------------------------------------------------
run: deps image
	@$(QEMU_CMD) </dev/null | tee $(B)/run.log
	@grep -Eq '^board: [0-9]+ passed, 0 failed' $(B)/run.log || { echo "make run: no passing verdict line"; exit 1; }

debug: deps image
	@echo "QEMU is halted, waiting for gdb on port $(GDB_PORT). In another terminal:"
	@echo "  gdb-multiarch $(B)/hypervisor.elf -ex 'target remote :$(GDB_PORT)' -ex 'break hv_main' -ex continue"
	$(QEMU_CMD) -S -gdb tcp::$(GDB_PORT)

# .text is what W^X maps executable: the code, rounded up to a page. Fails above TEXT_LIMIT.
size: image
	@if command -v aarch64-linux-gnu-size >/dev/null; then aarch64-linux-gnu-size -A -x $(B)/hypervisor.elf; \
	 else $(OBJDUMP) -h $(B)/hypervisor.elf; fi
	@printf 'raw image: %s bytes\n' $$(stat -c %s $(B)/hypervisor.bin)
	@hex=$$($(OBJDUMP) -h $(B)/hypervisor.elf | awk '$$2 == ".text" { print $$3 }'); \
	 [ -n "$$hex" ] || { echo "make size: no .text section in $(B)/hypervisor.elf"; exit 1; }; \
	 text=$$(printf '%d' 0x$$hex); \
	 printf 'text: %s bytes (limit %s)\n' $$text $(TEXT_LIMIT); \
	 [ $$text -le $(TEXT_LIMIT) ] || { echo "make size: .text is $$((text - $(TEXT_LIMIT))) bytes over the limit"; exit 1; }

# ---- tests --------------------------------------------------------------------
test: deps
	$(MAKE) --no-print-directory test-host
	$(MAKE) --no-print-directory test-corpus
	$(MAKE) --no-print-directory size   # .text within TEXT_LIMIT (issue 12): a regression fails the run
	@[ -x "$(QEMU_S2)" ] || $(MAKE) --no-print-directory qemu-s2 || \
	    echo "make test: building QEMU 10 failed; its scenarios will be reported as failed"
	$(MAKE) --no-print-directory test-qemu

test-host: check-modules
	CLANG=$(CLANG) SWIFTC=$(SWIFTC) OBJDUMP=$(FP_OBJDUMP) scripts/test-check-no-fp.sh
	scripts/test-bench-hafnium.sh
	CLANG=$(CLANG) LLD=$(LLD) QEMU="$(QEMU)" scripts/test-mem.sh   # Boot/vectors.S's memset/memcpy/memmove on QEMU
	swift test --disable-swift-testing
	$(MAKE) --no-print-directory fuzz FUZZ_EXECUTIONS=10000

# The device-tree fuzzer (Tests/FDTFuzzing): FUZZ_EXECUTIONS mutated QEMU dumps
# through the parser and platform layer, release build; exits 1 on a finding.
FUZZ_EXECUTIONS ?= 1000000
FUZZ_SEED ?= 1
fuzz:
	swift build -c release --product hv-fuzz
	@.build/release/hv-fuzz $(FUZZ_EXECUTIONS) $(FUZZ_SEED) >.build/hv-fuzz.log; status=$$?; \
	    grep -v '^    ' .build/hv-fuzz.log; exit $$status

# The model-based test (Tests/OwnershipTests/ModelBasedTests.swift) for
# MODEL_STEPS steps instead of make test's 10^5.
MODEL_STEPS ?= 1000000
model-long:
	HV_MODEL_STEPS=$(MODEL_STEPS) swift test --disable-swift-testing --filter ModelBasedTests

check-modules:
	scripts/check-module-graph.sh

# One line per portable module, "Name: Deps", for scripts/check-module-graph.sh.
module-graph:
	@$(foreach m,$(LIBS),echo '$(m): $($(m)_DEPS)';)

# Debian's arm64 kernel package (577 boards' DTBs), fetched and cached under
# ~/.cache/hvmem by scripts/debian-arm64.sh; compared against python3-libfdt.
test-corpus:
	scripts/dtb-corpus.sh

test-qemu: image linux
	QEMU="$(QEMU)" QEMU_S2="$(QEMU_S2)" CPU="$(CPU)" MEM="$(MEM)" scripts/qemu-test.sh $(B)/hypervisor.bin

# HAFNIUM=file: hafnium-mm-bench output (one or more rounds) for the ratio column.
bench:
	swift run -c release hv-bench $(if $(HAFNIUM),--hafnium $(HAFNIUM))

# The side-by-side comparison with Hafnium's mm.c (issue 12): HAFNIUM_BENCH=<a
# hafnium-mm-bench binary> (or HAFNIUM_SRC=<checkout> MM_BENCH=<its tool dir>),
# ROUNDS alternated rounds, minimum per row, ratio and goal; PIN=<cpu> pins both.
bench-hafnium:
	scripts/bench-hafnium.sh

# ---- the Linux host (Debian's arm64 kernel at EL1) ------------------------------
# build/linux/{Image,initramfs.cpio.gz,disk.img}, from Debian's packages only.
linux: deps
	@scripts/linux-initramfs.sh $(B)/linux >/dev/null

# The hypervisor with -kernel, Debian's kernel with -device loader at
# LINUX_ADDR, the initramfs with -initrd; hv.host=linux selects the host mode.
# MSIs work on both QEMUs: the SMMU's stage-1 mirror (QEMU 7.2) maps the
# GIC's MSI doorbell page and no other MMIO.
LINUX_ADDR ?= 0x50000000
LINUX_CPU  ?= max,pauth-impdef=on
# No -semihosting (Linux at EL1 could end the run with it): the verdict is the
# hypervisor's "host: N passed, 0 failed" line.
run-linux: deps image linux
	@$(QEMU) -M $(MACHINE) -cpu $(LINUX_CPU) -m $(MEM) -smp $(SMP) -nographic \
	    -kernel $(B)/hypervisor.bin -device loader,file=$(B)/linux/Image,addr=$(LINUX_ADDR),force-raw=on \
	    -initrd $(B)/linux/initramfs.cpio.gz -device edu,dma_mask=0xffffffffffffffff \
	    -drive file=$(B)/linux/disk.img,if=none,id=d0,format=raw,readonly=on \
	    -device virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on \
	    -append "hv.host=linux hv.kernel=$(LINUX_ADDR) console=ttyAMA0" $(QEMU_ARGS) </dev/null | tee $(B)/run-linux.log
	@grep -Eq '^host: [0-9]+ passed, 0 failed' $(B)/run-linux.log || { echo "make run-linux: no passing verdict line"; exit 1; }

# ---- set-up -------------------------------------------------------------------
deps:
	@scripts/deps.sh

qemu-s2:
	scripts/build-qemu-s2.sh debian $(QEMU_S2_PREFIX)

clean:
	rm -rf $(B)
