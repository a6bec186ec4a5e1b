/// Why a PCI configuration step was refused. Nothing is written to the
/// device when one of these is thrown, except where the case says so.
public enum PCIError: Error, Equatable, Sendable {
    /// The bus is outside the host bridge's bus range (and its ECAM).
    case busOutsideRange(UInt8)
    /// Vendor ID 0xFFFF: no function answers at this address.
    case noFunction(BDF)
    /// Type 0 headers have BARs 0-5, type 1 (bridges) 0-1; a 64-bit BAR
    /// needs the next index too.
    case barIndexOutOfRange(Int)
    /// Memory BAR type 01 (below 1 MiB, PCI 2.x) or an I/O BAR where memory was asked.
    case unsupportedBARType(raw: UInt32)
    /// BAR sizes are powers of two; a window request must be one too.
    case sizeNotPowerOfTwo(UInt64)
    /// The window has no aligned room for `size` bytes.
    case windowExhausted(size: UInt64)
    /// The address is not a multiple of the BAR's size.
    case misalignedBARAddress(UInt64, size: UInt64)
    /// A 32-bit BAR cannot decode this address.
    case addressAbove4GiB(UInt64)
    /// The window's PCI addresses do not fit the BAR kind.
    case windowUnsuitable(PCIAddressSpace)
}
