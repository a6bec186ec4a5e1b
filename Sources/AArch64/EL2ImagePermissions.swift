/// W^X for the hypervisor image in its own EL2 stage-1 map (VMSAv8-64, EL2
/// single-VA-range regime, 4 KiB pages): code is read-only and executable,
/// read-only data is read-only and execute-never, everything else (data,
/// BSS, page tables, heap, stack) is writable and execute-never. With
/// SCTLR_EL2.WXN set the hardware also treats any writable page as
/// execute-never, so a later mapping mistake cannot undo this.
public struct EL2ImagePermissions: Equatable, Sendable {
    public enum Permission: Equatable, Sendable { case readExecute, readOnly, readWrite }

    /// `[textStart, textEnd)` is code, `[textEnd, readOnlyEnd)` read-only data; page aligned.
    public let textStart: UInt64
    public let textEnd: UInt64
    public let readOnlyEnd: UInt64

    /// Stage-1 AP[2] (bit 7): read-only at every EL the regime serves.
    public static let readOnlyBit: UInt64 = 1 << 7
    /// XN (bit 54) of the EL2 single-range regime.
    public static let executeNever: UInt64 = 1 << 54
    /// Level-3 page descriptor: bits [1:0] = 0b11.
    public static let pageType: UInt64 = 0b11
    /// SCTLR_EL2.WXN (bit 19): writable implies execute-never.
    public static let sctlrWXN: UInt64 = 1 << 19
    @usableFromInline static let pageMask: UInt64 = 0xFFF

    /// Nil unless the three bounds are page aligned and in order.
    /// Transparent, as `pageDescriptor`: each has one caller on the board.
    @_transparent public init?(textStart: UInt64, textEnd: UInt64, readOnlyEnd: UInt64) {
        guard textStart & Self.pageMask == 0, textEnd & Self.pageMask == 0, readOnlyEnd & Self.pageMask == 0,
              textStart < textEnd, textEnd <= readOnlyEnd else { return nil }
        self.textStart = textStart
        self.textEnd = textEnd
        self.readOnlyEnd = readOnlyEnd
    }

    public func permission(of address: UInt64) -> Permission {
        if address >= textStart && address < textEnd { return .readExecute }
        if address >= textEnd && address < readOnlyEnd { return .readOnly }
        return .readWrite
    }

    /// The level-3 descriptor of the page at `address` (page aligned), with
    /// the memory attributes (AttrIndx, SH, AF) of the block it replaces.
    @_transparent public func pageDescriptor(_ address: UInt64, attributes: UInt64) -> UInt64 {
        let base = address & ~Self.pageMask | attributes | Self.pageType
        switch permission(of: address) {
        case .readExecute: return base | Self.readOnlyBit
        case .readOnly: return base | Self.readOnlyBit | Self.executeNever
        case .readWrite: return base | Self.executeNever
        }
    }
}
