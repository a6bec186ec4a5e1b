import AArch64
@testable import Platform

/// A model of one function's configuration space: ID registers read-only,
/// Command writable in its low 3 bits, Status write-1-to-clear, BARs that
/// decode `size` bytes (read back the size mask after all ones).
final class FakeFunction {
    struct BAR {
        var size: UInt64          // 0: unimplemented
        var flags: UInt32         // read-only low bits: type, prefetchable, I/O
        var value: UInt64 = 0
        var isUpperHalf = false   // the high dword of a 64-bit BAR
    }

    var id: UInt32
    var classRevision: UInt32
    var headerDword: UInt32
    var command: UInt16 = 0
    var status: UInt16
    var bars: [BAR]
    /// Writes seen, as (register offset, value).
    var writes: [(Int, UInt32)] = []
    /// The command register at each all-ones BAR write (decode must be off).
    var commandWhileProbing: [UInt16] = []

    init(vendor: UInt16, device: UInt16, classCode: UInt32, revision: UInt8, header: UInt8,
         status: UInt16 = 0x0010, bars: [BAR] = []) {
        id = UInt32(device) << 16 | UInt32(vendor)
        classRevision = classCode << 8 | UInt32(revision)
        headerDword = UInt32(header) << 16
        self.status = status
        self.bars = bars + Array(repeating: BAR(size: 0, flags: 0), count: max(0, 6 - bars.count))
    }

    /// QEMU's edu (HARDWARE.md section 9): 1234:11e8 rev 0x10, class 0x00ff00,
    /// BAR0 1 MiB 32-bit non-prefetchable memory.
    static func edu() -> FakeFunction {
        FakeFunction(vendor: 0x1234, device: 0x11E8, classCode: 0x00_FF00, revision: 0x10, header: 0,
                     bars: [BAR(size: 0x10_0000, flags: 0)])
    }

    /// QEMU's virt host bridge 1b36:0008 (class 0x060000, no BARs).
    static func hostBridge() -> FakeFunction {
        FakeFunction(vendor: 0x1B36, device: 0x0008, classCode: 0x06_0000, revision: 0, header: 0)
    }

    func barRead(_ index: Int) -> UInt32 {
        let bar = bars[index]
        if bar.isUpperHalf {
            let low = bars[index - 1]
            return UInt32(truncatingIfNeeded: (low.value & ~(low.size - 1)) >> 32)
        }
        guard bar.size != 0 else { return 0 }
        return UInt32(truncatingIfNeeded: bar.value & ~(bar.size - 1)) & ~(bar.flags & 1 == 1 ? 0x3 : 0xF) | bar.flags
    }

    func barWrite(_ index: Int, _ value: UInt32) {
        if bars[index].isUpperHalf {
            bars[index - 1].value = bars[index - 1].value & 0xFFFF_FFFF | UInt64(value) << 32
        } else if bars[index].size != 0 {
            bars[index].value = bars[index].value & ~0xFFFF_FFFF | UInt64(value)
        }
    }

    func read(_ register: Int) -> UInt32 {
        switch register {
        case 0x00: return id
        case 0x04: return UInt32(status) << 16 | UInt32(command)
        case 0x08: return classRevision
        case 0x0C: return headerDword
        case 0x10..<0x28: return barRead((register - 0x10) / 4)
        default: return 0
        }
    }

    func write(_ register: Int, _ value: UInt32) {
        writes.append((register, value))
        switch register {
        case 0x04:
            command = UInt16(truncatingIfNeeded: value) & 0x7
            status &= ~UInt16(truncatingIfNeeded: value >> 16)
        case 0x10..<0x28:
            if value == UInt32.max { commandWhileProbing.append(command) }
            barWrite((register - 0x10) / 4, value)
        default: break
        }
    }
}

/// An ECAM region over fake functions: offset = bus<<20 | dev<<15 | fn<<12 | reg.
final class FakeECAM: RegisterBlock {
    var functions: [UInt16: FakeFunction] = [:]
    var accesses = 0

    func function(at offset: Int) -> (FakeFunction?, Int) {
        let rid = UInt16(truncatingIfNeeded: offset >> 12)
        return (functions[rid], offset & 0xFFF)
    }

    func read32(_ offset: Int) -> UInt32 {
        accesses += 1
        let (function, register) = self.function(at: offset)
        return function?.read(register) ?? UInt32.max
    }

    func write32(_ offset: Int, _ value: UInt32) {
        accesses += 1
        let (function, register) = self.function(at: offset)
        function?.write(register, value)
    }

    func read64(_ offset: Int) -> UInt64 { fatalError("ECAM is accessed 32 bits at a time") }
    func write64(_ offset: Int, _ value: UInt64) { fatalError("ECAM is accessed 32 bits at a time") }

    /// QEMU virt with `-device edu` and the default NIC left out: the host
    /// bridge at 00:00.0 and edu at 00:02.0.
    static func virtWithEdu() -> FakeECAM {
        let ecam = FakeECAM()
        ecam.functions[BDF(bus: 0, device: 0, function: 0)!.requesterID] = .hostBridge()
        ecam.functions[BDF(bus: 0, device: 2, function: 0)!.requesterID] = .edu()
        return ecam
    }
}
