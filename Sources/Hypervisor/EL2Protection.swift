import AArch64
import ArchC

/// W^X for the image in the EL2 map: start.S maps the image's 1 GiB as one
/// writable, executable Normal block; here that block becomes a level-2
/// table of the same 2 MiB blocks, with level-3 tables for the 2 MiB blocks
/// the image spans, whose pages get `EL2ImagePermissions`: `.text` read-only
/// and executable, `.rodata` read-only, the rest execute-never. SCTLR_EL2.WXN
/// is set with the switch, so no writable page can be executed afterwards.
enum EL2Protection {
    static let gib: UInt64 = 1 << PageSize.shift1G
    static let mib2: UInt64 = 1 << PageSize.shift2M
    static let entries = 512
    static let typeMask: UInt64 = 0b11
    static let blockType: UInt64 = 0b01
    static let tableType: UInt64 = 0b11
    static let addressMask: UInt64 = 0x0000_FFFF_FFFF_F000
    static let maximumL3Tables = 2


    /// The per-CPU stacks of Boot/host.S, as AArch64's EL2StackLayout reads
    /// them (computed at each use: a lazily initialised global costs more).
    @inline(never)
    static var cpuStacks: EL2StackLayout? {
        EL2StackLayout(base: arch_cpu_stacks(), cpus: Int(HV_HOST_MAX_CPUS),
                       exceptionStackBytes: UInt64(HV_CPU_EXCEPTION_STACK_SIZE),
                       stackBytes: UInt64(HV_HOST_CPU_STACK_SIZE))
    }

    /// The assembly (host.h's sizes) and the portable layout must place the same pages.
    @_transparent
    static func stackLayoutAgrees(_ stacks: EL2StackLayout) -> Bool {
        stacks.slotBytes == UInt64(HV_CPU_SLOT_SIZE) && stacks.exceptionStackTopOffset == UInt64(HV_CPU_EXCEPTION_STACK_TOP)
            && stacks.end == arch_cpu_stacks_end() && EL2StackLayout.guardBytes == UInt64(HV_CPU_GUARD_SIZE)
    }

    @_transparent
    static func isGuard(_ page: UInt64, _ stacks: EL2StackLayout) -> Bool {
        page == arch_stack_guard() || stacks.guardPage(containing: page) != nil
    }

    /// Applies W^X and returns the number of `.text` pages, or says which
    /// precondition failed (as a failed check) and returns nil.
    @_transparent
    static func apply() -> UInt64? {
        guard let stacks = cpuStacks, stackLayoutAgrees(stacks) else {
            return refuse("EL2 stacks: Boot/include/host.h and EL2StackLayout place the per-CPU stacks alike")
        }
        let start = arch_image_start(), end = arch_image_end()
        guard let layout = EL2ImagePermissions(textStart: start, textEnd: arch_text_end(),
                                               readOnlyEnd: arch_data_start()) else {
            return refuse("W^X: the linker script puts .text and .data on page boundaries")
        }
        // The image must sit in one 1 GiB block, spanning at most two 2 MiB ones.
        let firstRegion = start / mib2, lastRegion = (end - 1) / mib2
        guard start / gib == (end - 1) / gib, lastRegion - firstRegion < UInt64(maximumL3Tables) else {
            return refuse("W^X: the image fits in two 2 MiB blocks of one 1 GiB block")
        }
        let l0 = UnsafeMutablePointer<UInt64>(bitPattern: UInt(arch_el2_l0_table()))!
        let l0Entry = l0[Int(start >> 39)]
        guard l0Entry & typeMask == tableType else { return refuse("W^X: start.S maps the image with one 1 GiB block") }
        let l1 = UnsafeMutablePointer<UInt64>(bitPattern: UInt(l0Entry & addressMask))!
        let entry = l1 + Int(start >> PageSize.shift1G & 511)
        let block = entry.pointee
        guard block & typeMask == blockType else { return refuse("W^X: start.S maps the image with one 1 GiB block") }
        // AttrIndx, SH, AF and the upper attributes of the block, kept for every page.
        let attributes = block & ~addressMask & ~typeMask

        let tables = UnsafeMutablePointer<UInt64>(bitPattern: UInt(arch_el2_wx_tables()))!
        let l2 = tables
        let gibBase = block & addressMask
        // Index loops with wrapping arithmetic (no range iterators): every
        // sum stays far below 2^64 (a 48-bit base plus less than 1 GiB, a
        // 2 MiB-aligned base at most the image's end plus less than 2 MiB).
        var j = 0
        while j < entries {
            l2[j] = (gibBase &+ UInt64(j) &* mib2) | attributes | blockType
            j &+= 1
        }
        var region = firstRegion
        var table = 1
        while region <= lastRegion {
            let l3 = tables + table * entries
            let regionBase = region * mib2
            var k = 0
            while k < entries {
                let page = regionBase &+ UInt64(k) &* PageSize.bytes4K
                // The page under every stack stays invalid: an overflow faults there.
                l3[k] = isGuard(page, stacks) ? 0 : layout.pageDescriptor(page, attributes: attributes)
                k &+= 1
            }
            l2[Int(regionBase / mib2 & 511)] = UInt64(UInt(bitPattern: l3)) | tableType
            region += 1
            table += 1
        }
        arch_dsb_ishst()
        hv_el2_swap_live_entry(entry, UInt64(UInt(bitPattern: l2)) | tableType, EL2ImagePermissions.sctlrWXN)
        return (layout.textEnd - layout.textStart) / PageSize.bytes4K
    }

    /// A precondition of `apply` failed: the check says which, and nothing was changed.
    @_transparent
    private static func refuse(_ what: StaticString) -> UInt64? {
        Checks.expect(false, what)
        return nil
    }

    /// Prints what `apply` did.
    @_transparent
    static func applyAndReport() {
        guard let pages = apply() else { return }
        Console.say("el2 map: W^X: .text read-only and executable (%d pages), .rodata read-only, everything else execute-never, SCTLR_EL2.WXN set\n",
                    pages)
        // Read back, not assumed: the switch in Boot/wx.S must have left WXN (bit 19) set.
        Checks.expect(arch_read_sctlr_el2() & EL2ImagePermissions.sctlrWXN != 0,
                      "W^X: SCTLR_EL2.WXN (bit 19) reads back set after the switch")
        Console.say("el2 map: stack guard page at %x unmapped\n", arch_stack_guard())
        if let stacks = cpuStacks {
            Console.say("el2 map: %d per-CPU EL2 stacks and exception stacks at %x + %x, a guard page unmapped below each\n",
                        UInt64(stacks.cpus), stacks.base, stacks.end - stacks.base)
        }
    }

    /// `hv.selftest=write-rodata`: a store to the first word of `.rodata`,
    /// which must take a permission fault at EL2 that the vectors report.
    @_transparent
    static func writeToReadOnlyData() {
        let rodata = arch_text_end()
        guard rodata < arch_data_start() else {
            Checks.expect(false, "selftest: the image has a .rodata section to write to")
            finish()
        }
        Console.say("selftest: storing to .rodata at %x\n", rodata)
        UnsafeMutablePointer<UInt64>(bitPattern: UInt(rodata))!.pointee = 0
        Console.line("selftest: the store to .rodata went through")
    }

    static func isStackGuard(_ address: UInt64) -> Bool {
        address >= arch_stack_guard() && address - arch_stack_guard() < PageSize.bytes4K
    }
}
