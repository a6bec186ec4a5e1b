import AArch64
import Platform
import ArchC

/// The boot banner: what the image found, all of it read from the CPU's ID
/// registers and the DTB.
enum Banner {
    static func cpu(_ id: CPUIDRegisters) {
        Console.put("hvmem: running at EL")
        Console.decimal(arch_read_currentel() >> 2 & 3)
        Console.put(", MIDR_EL1 ")
        Console.hex(arch_read_midr_el1())
        Console.put(", PARange ")
        Console.decimal(id.physicalAddressRange.bits)
        Console.put(" bits, VMID ")
        Console.decimal(id.vmidWidth.bits)
        Console.line(" bits")
    }

    static func memory(_ platform: PlatformDescription, _ map: EL2Map.Summary) {
        for bank in platform.memoryBanks {
            Console.put("memory: ")
            Console.range(bank.base.raw, bank.size)
            Console.line("")
        }
        for r in platform.reservedRanges {
            Console.put("reserved: ")
            Console.range(r.base.raw, r.size)
            Console.line("")
        }
        if let uart = platform.console {
            Console.put("console: ")
            switch uart.kind {
            case .pl011: Console.put("pl011")
            case .ns16550(let layout):
                Console.put("ns16550 (reg-shift ")
                Console.decimal(UInt64(layout.regShift))
                Console.put(", reg-io-width ")
                Console.decimal(UInt64(layout.ioWidth))
                Console.put(")")
            case .unsupported: Console.put("unsupported UART")
            }
            Console.put(" at ")
            Console.hex(uart.registers.base.raw)
            Console.line(uart.source == .stdoutPath ? " (from /chosen/stdout-path)" : " (from /aliases/serial0)")
        }
        if let psci = platform.psci {
            Console.put("psci: conduit ")
            Console.line(psci.conduit == .smc ? "smc" : "hvc")
        }
        Console.put("el2 map: RAM as normal memory in ")
        Console.decimal(map.gibBlocks)
        Console.put(" 1 GiB blocks and ")
        Console.decimal(map.splitBlocks)
        Console.put(" split blocks, ")
        Console.decimal(map.addedL1Tables)
        Console.put(" level-1 tables added")
        if map.skippedRanges > 0 {
            Console.put(", ")
            Console.decimal(map.skippedRanges)
            Console.put(" ranges left unmapped (spare tables exhausted)")
        }
        Console.line("")
    }

    static func frames(_ frames: FrameAllocator, image: MemoryRange, blob: MemoryRange) {
        Console.put("image: ")
        Console.range(image.base.raw, image.size)
        Console.put(", dtb: ")
        Console.range(blob.base.raw, blob.size)
        Console.put(", free frames: ")
        Console.decimal(frames.freeFrameCount)
        Console.line("")
    }

    static func yesNo(_ b: Bool) { Console.put(b ? "yes" : "no") }

    static func bdf(_ address: BDF) {
        Console.hexDigits(UInt64(address.bus), 2)
        Console.put(":")
        Console.hexDigits(UInt64(address.device), 2)
        Console.put(".")
        Console.decimal(UInt64(address.function))
    }
}
