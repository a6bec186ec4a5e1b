import AArch64
import ArchC

/// QEMU's `edu` PCI device (hw/misc/edu.c, docs/specs/edu.rst): a DMA engine
/// with a 4 KiB internal buffer, used to issue real DMA through the SMMU.
/// Registers below 0x80 take 32-bit accesses only; the DMA registers 64-bit.
struct EduDevice {
    static let vendorID: UInt16 = 0x1234
    static let deviceID: UInt16 = 0x11E8
    static let identification = 0x00
    /// The identification register's value: major 1, minor 0, and 0xED.
    static let expectedIdentification: UInt32 = 0x0100_00ED
    static let dmaSource = 0x80
    static let dmaDestination = 0x88
    static let dmaCount = 0x90
    static let dmaCommand = 0x98
    static let commandStart: UInt64 = 1 << 0
    static let commandToRAM: UInt64 = 1 << 1
    /// The device-side window of the internal buffer.
    static let bufferAddress: UInt64 = 0x40000
    static let bufferBytes: UInt64 = 0x1000
    /// edu masks the RAM-side DMA address to 28 bits by default.
    static let dmaAddressLimit: UInt64 = 1 << 28

    let registers: MMIORegisterBlock

    var identificationValue: UInt32 { registers.read32(Self.identification) }

    /// Copies `bytes` from the bus address `iova` into the buffer at `offset`
    /// (toRAM == false), or from the buffer to `iova` (toRAM == true), and waits
    /// for completion, at most `timeoutMicroseconds` (QEMU completes after 100 ms).
    func dma(iova: IOVA, bufferOffset: UInt64, bytes: UInt64, toRAM: Bool, timeoutMicroseconds: UInt64 = 2_000_000) -> Bool {
        // edu aborts the whole VM on a range outside its buffer or a zero count: refuse here.
        guard bytes > 0, bufferOffset + bytes <= Self.bufferBytes, iova.raw + bytes <= Self.dmaAddressLimit else { return false }
        let device = Self.bufferAddress + bufferOffset
        registers.write64(Self.dmaSource, toRAM ? device : iova.raw)
        registers.write64(Self.dmaDestination, toRAM ? iova.raw : device)
        registers.write64(Self.dmaCount, bytes)
        registers.write64(Self.dmaCommand, Self.commandStart | (toRAM ? Self.commandToRAM : 0))
        let frequency = arch_read_cntfrq_el0()
        let start = arch_read_cntpct_el0()
        let limit = frequency / 1_000_000 * timeoutMicroseconds
        while registers.read64(Self.dmaCommand) & Self.commandStart != 0 {
            if arch_read_cntpct_el0() &- start > limit { return false }
        }
        return true
    }
}
