import AArch64
import Platform
import ArchC

/// The boot banner: what the image found, all of it read from the CPU's ID
/// registers and the DTB.
enum Banner {
    @_transparent
    static func cpu(_ id: CPUIDRegisters) {
        Console.say("hvmem: running at EL%d, MIDR_EL1 %x, PARange %d bits, VMID %d bits\n",
                    arch_read_currentel() >> 2 & 3, arch_read_midr_el1(), UInt64(id.physicalAddressRange.bits),
                    UInt64(id.vmidWidth.bits))
    }

    @_transparent
    static func memory(_ platform: PlatformDescription, _ map: EL2Map.Summary) {
        for bank in platform.memoryBanks {
            Console.say("memory: %x + %x\n", bank.base.raw, bank.size)
        }
        for r in platform.reservedRanges {
            Console.say("reserved: %x + %x\n", r.base.raw, r.size)
        }
        if let uart = platform.console {
            let base = uart.registers.base.raw
            switch uart.kind {
            case .pl011: Console.say("console: pl011 at %x", base)
            case .ns16550(let layout):
                Console.say("console: ns16550 (reg-shift %d, reg-io-width %d) at %x", UInt64(layout.regShift),
                            UInt64(layout.ioWidth), base)
            case .unsupported: Console.say("console: unsupported UART at %x", base)
            }
            Console.line(uart.source == .stdoutPath ? " (from /chosen/stdout-path)" : " (from /aliases/serial0)")
        }
        if let psci = platform.psci {
            Console.put("psci: conduit ")
            Console.line(psci.conduit == .smc ? "smc" : "hvc")
        }
        Console.say("el2 map: RAM as normal memory in %d 1 GiB blocks and %d split blocks, %d level-1 tables added",
                    UInt64(map.gibBlocks), UInt64(map.splitBlocks), UInt64(map.addedL1Tables))
        if map.skippedRanges > 0 {
            Console.say(", %d ranges left unmapped (spare tables exhausted)", UInt64(map.skippedRanges))
        }
        Console.line("")
    }

    @_transparent
    static func frames(_ frames: FrameAllocator, image: MemoryRange, blob: MemoryRange) {
        Console.say("image: %x + %x, dtb: %x + %x, free frames: %d\n",
                    image.base.raw, image.size, blob.base.raw, blob.size, frames.freeFrameCount)
    }

}
