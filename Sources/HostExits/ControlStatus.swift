import Ownership

/// The value the control device's STATUS register reads back after a command.
///
/// Stable numbers, pinned by a test, so a shell script can compare them:
/// - 0: success;
/// - `0x1_00nn`: the device refused the command before running it
///   (`ControlCommandError`);
/// - `errno << 8 | reason`: the ownership operation refused, with Linux's
///   errno value for the `OwnershipError` case (EPERM 1, ENOENT 2, ENOMEM 12,
///   EBUSY 16, EEXIST 17, EINVAL 22, EOVERFLOW 75) and the 1-based position
///   of the reason inside it, in declaration order.
public enum ControlStatus {
    public static let success: UInt64 = 0
    static let commandErrorBase: UInt64 = 0x1_0000
    @usableFromInline static let errnoShift: UInt64 = 8

    /// The status word for a refusal by the device itself.
    public static func code(_ error: ControlCommandError) -> UInt64 {
        switch error {
        case .unknownCommand: commandErrorBase | 1
        case .countOutOfRange: commandErrorBase | 2
        case .frameOutOfRange: commandErrorBase | 3
        case .domainOutOfRange: commandErrorBase | 4
        }
    }

    /// The status word for an ownership refusal.
    @_transparent public static func code(_ error: OwnershipError) -> UInt64 {
        let (errno, reason): (UInt64, UInt64)
        switch error {
        case .EPERM(let r):
            errno = 1
            switch r {
            case .notOwner: reason = 1
            case .wrongHostState: reason = 2
            case .dmaShared: reason = 3
            case .borrowedBy: reason = 4
            case .selfForeign: reason = 5
            }
        case .ENOENT(let r):
            errno = 2
            switch r {
            case .unmapped: reason = 1
            case .noSuchDomain: reason = 2
            case .notDMAShared: reason = 3
            }
        case .ENOMEM(let r):
            errno = 12
            switch r {
            case .tablePages: reason = 1
            case .domainSlots: reason = 2
            case .hostDeviceSlots: reason = 3
            }
        case .EBUSY(let r):
            errno = 16
            switch r {
            case .xenheapAlreadyMapped: reason = 1
            case .gfnOccupied: reason = 2
            case .p2mEntryExists: reason = 3
            case .flushPending: reason = 4
            case .iommuNotConfirmed: reason = 5
            }
        case .EEXIST(let r):
            errno = 17
            switch r {
            case .dmaDomainAttached: reason = 1
            case .sharedInfoInstalled: reason = 2
            }
        case .EINVAL(let r):
            errno = 22
            switch r {
            case .bankMisaligned: reason = 1
            case .bankOverlap: reason = 2
            case .misaligned: reason = 3
            case .sizeMisaligned: reason = 4
            case .rangeWraps: reason = 5
            case .ramClaimedAsDevice: reason = 6
            case .notRAM: reason = 7
            case .notADomain: reason = 8
            case .domainExists: reason = 9
            case .gfnOutOfRange: reason = 10
            case .grantFrameIndex: reason = 11
            case .sharedInfoIndex: reason = 12
            case .notXenheap: reason = 13
            case .notGuestRAM: reason = 14
            case .notGrantMapped: reason = 15
            case .rangeEmpty: reason = 16
            case .dmaDomainUnknown: reason = 17
            case .p2mRejected: reason = 18
            case .notHostDevice: reason = 19
            case .deviceRegionOverlapsRAM: reason = 20
            }
        case .EOVERFLOW(let r):
            errno = 75
            switch r {
            case .dmaShareCount: reason = 1
            case .referenceCount: reason = 2
            case .iommuMappingCount: reason = 3
            }
        }
        return errno << errnoShift | reason
    }
}

/// Why the control device refused a command without running it.
public enum ControlCommandError: Error, Equatable, Sendable {
    /// COMMAND held no known command number.
    case unknownCommand(UInt64)
    /// COUNT is 0, above `ControlRegisterFile.maxPagesPerCommand`, or not 1
    /// for a single-frame command.
    case countOutOfRange(UInt64)
    /// FRAME (plus COUNT) does not name a physical frame.
    case frameOutOfRange(UInt64)
    /// DOMAIN does not name a guest domain.
    case domainOutOfRange(UInt64)
}
