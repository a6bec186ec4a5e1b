import AArch64
import Ownership

/// The paravirtual control device: one page of IPA space the host's device
/// tree describes (`hvmem,control-v1`) and its stage 2 leaves unmapped, so
/// every access traps and is emulated here.
///
/// Register layout (offsets from the page; every register is 64 bits wide
/// and may be accessed as 64 bits, or as 32 bits at its own offset, which
/// reads the low half and writes the value zero-extended):
///
/// | offset | name        | access | meaning |
/// |--------|-------------|--------|---------|
/// | 0x00   | ID          | RO     | `ControlRegisterFile.identification`: "HVMC" in [31:0], version 1 in [47:32] |
/// | 0x08   | FRAME       | RW     | host frame number (physical address >> 12) of the first page |
/// | 0x10   | COUNT       | RW     | pages, 1...`maxPagesPerCommand`; exactly 1 for donate/reclaim |
/// | 0x18   | DOMAIN      | RW     | target guest domain (donate to / reclaim from a guest) |
/// | 0x20   | GUEST_FRAME | RW     | guest frame number at which the page is mapped in that guest |
/// | 0x28   | COMMAND     | RW     | a write runs the command (`ControlCommand`); reads the last one written |
/// | 0x30   | STATUS      | RO     | `ControlStatus` of the last command |
///
/// Any other offset, a width other than 32 or 64 bits, a 32-bit access to
/// the high half, or a write to ID or STATUS is refused: the access is not
/// performed and the host takes a synchronous external abort.
///
/// Concurrency: the registers are per CPU (each CPU has its own
/// `ControlRegisterFile`, kept in the hypervisor's per-CPU data), so two CPUs
/// can set up and run commands at once without seeing each other's
/// arguments. The operations they run share the page-state tables, which
/// the `HostPageOperations` conformance locks.
public struct ControlRegisterFile: Equatable, Sendable {
    public static let idOffset: UInt64 = 0x00
    public static let frameOffset: UInt64 = 0x08
    public static let countOffset: UInt64 = 0x10
    public static let domainOffset: UInt64 = 0x18
    public static let guestFrameOffset: UInt64 = 0x20
    public static let commandOffset: UInt64 = 0x28
    public static let statusOffset: UInt64 = 0x30
    /// One past the last register.
    public static let registersEnd: UInt64 = 0x38
    static let registerBytes: UInt64 = 8

    /// ID: "HVMC" (0x48564D43) and version 1.
    public static let identification: UInt64 = 0x0000_0001_4856_4D43
    /// Bounds the work of one trapped write (512 pages: 2 MiB).
    public static let maxPagesPerCommand: UInt64 = 512
    /// Frame numbers above this would not be 52-bit physical addresses.
    static let frameLimit: UInt64 = 1 << (52 - PageSize.shift4K)

    /// The registers by offset / 8, ID's slot holding `identification` (and
    /// one spare slot, so the board reuses the 8-word InlineArray it has): an
    /// access reads or writes its slot, where a switch per offset was a
    /// branch and a field per register on the board.
    /// ID, FRAME, COUNT, DOMAIN, GUEST_FRAME, COMMAND, STATUS, spare.
    var registers: InlineArray<8, UInt64> = [identification, 0, 0, 0, 0, 0, ControlStatus.success, 0]

    public var frame: UInt64 { registers[Int(Self.frameOffset / Self.registerBytes)] }
    public var count: UInt64 { registers[Int(Self.countOffset / Self.registerBytes)] }
    public var domain: UInt64 { registers[Int(Self.domainOffset / Self.registerBytes)] }
    public var guestFrame: UInt64 { registers[Int(Self.guestFrameOffset / Self.registerBytes)] }
    public var command: UInt64 { registers[Int(Self.commandOffset / Self.registerBytes)] }
    public var status: UInt64 { registers[Int(Self.statusOffset / Self.registerBytes)] }

    public init() {}

    public static func == (a: Self, b: Self) -> Bool {
        for i in 0..<8 where a.registers[i] != b.registers[i] { return false }
        return true
    }

    /// Performs one access the host made at `offset` in the page.
    ///
    /// A read returns the value (zero-extended from the access width); a
    /// write returns nil. A refused access throws and changes nothing; a
    /// command that the operations refuse is not an access error: its code
    /// lands in STATUS.
    public mutating func access<Operations: HostPageOperations & ~Copyable>(
        _ access: ControlAccess, operations: inout Operations
    ) throws(ControlAccessError) -> UInt64? {
        try performAccess(access, operations: &operations)
    }

    /// `access`'s body, inlined into `HostExitHandler.controlAccess`, its one
    /// caller on the board (the board's inline threshold is 0).
    @_transparent mutating func performAccess<Operations: HostPageOperations & ~Copyable>(
        _ access: ControlAccess, operations: inout Operations
    ) throws(ControlAccessError) -> UInt64? {
        guard access.bytes == 4 || access.bytes == 8 else { throw .unsupportedWidth(access.bytes) }
        guard access.offset < Self.registersEnd else { throw .outOfRange(access.offset) }
        // Each register is accessed at its own offset, by either width.
        guard access.offset % Self.registerBytes == 0 else { throw .unaligned(access.offset) }
        let slot = Int(access.offset / Self.registerBytes)
        let widthMask: UInt64 = access.bytes == 4 ? 0xFFFF_FFFF : UInt64.max
        guard let value = access.writeValue else { return registers[slot] & widthMask }
        guard access.offset != Self.idOffset && access.offset != Self.statusOffset else {
            throw .readOnly(access.offset)
        }
        registers[slot] = value & widthMask
        if access.offset == Self.commandOffset {
            registers[Int(Self.statusOffset / Self.registerBytes)] = run(value & widthMask, &operations)
        }
        return nil
    }

    /// Runs a command with the current arguments; returns the STATUS word.
    @_transparent mutating func run<Operations: HostPageOperations & ~Copyable>(_ raw: UInt64, _ operations: inout Operations) -> UInt64 {
        do throws(ControlCommandError) {
            guard let command = ControlCommand(rawValue: raw) else { throw .unknownCommand(raw) }
            let singleFrame = command != .shareForDMA && command != .unshareForDMA
            guard count >= 1 && count <= (singleFrame ? 1 : Self.maxPagesPerCommand) else {
                throw .countOutOfRange(count)
            }
            guard frame < Self.frameLimit && frame + count <= Self.frameLimit else { throw .frameOutOfRange(frame) }
            let guestTarget = command == .donateToGuest || command == .reclaimFromGuest
            if guestTarget {
                guard domain < UInt64(DomainID.firstReserved) else { throw .domainOutOfRange(domain) }
                guard guestFrame < Self.frameLimit else { throw .frameOutOfRange(guestFrame) }
            }
            let first = MFN(raw: frame)
            let target = DomainID(UInt16(truncatingIfNeeded: domain))
            let gfn = GFN(raw: guestFrame)
            do throws(OwnershipError) {
                switch command {
                case .shareForDMA: try operations.shareForDMA(first, count: count)
                case .unshareForDMA: try operations.unshareForDMA(first, count: count)
                case .donateToHypervisor: try operations.donateToHypervisor(first)
                case .reclaimFromHypervisor: try operations.reclaimFromHypervisor(first)
                case .donateToGuest: try operations.donateToGuest(first, domain: target, at: gfn)
                case .reclaimFromGuest: try operations.reclaimFromGuest(target, at: gfn)
                }
                return ControlStatus.success
            } catch {
                return ControlStatus.code(error)
            }
        } catch {
            return ControlStatus.code(error)
        }
    }
}

/// Command numbers for the COMMAND register.
public enum ControlCommand: UInt64, Sendable {
    case shareForDMA = 1
    case unshareForDMA = 2
    case donateToHypervisor = 3
    case reclaimFromHypervisor = 4
    case donateToGuest = 5
    case reclaimFromGuest = 6
}

/// One access to the control page, decoded from the trap.
public struct ControlAccess: Equatable, Sendable {
    /// Byte offset inside the page.
    public let offset: UInt64
    /// Access size in bytes (1, 2, 4 or 8).
    public let bytes: Int
    /// The value stored, already cut to `bytes`; nil for a load.
    public let writeValue: UInt64?

    public init(offset: UInt64, bytes: Int, writeValue: UInt64?) {
        self.offset = offset
        self.bytes = bytes
        self.writeValue = writeValue
    }
}

/// Why an access to the control page was refused (the host gets an abort).
public enum ControlAccessError: Error, Equatable, Sendable {
    /// ESR_EL2.ISV was 0: the instruction cannot be emulated (a load/store
    /// pair, a writeback form, SIMD registers).
    case noSyndrome
    /// A cache maintenance or address translation instruction on the page.
    case cacheMaintenance
    /// A stage-1 table walk read the page.
    case tableWalk
    case unsupportedWidth(Int)
    case unaligned(UInt64)
    case outOfRange(UInt64)
    case readOnly(UInt64)

    public var name: StaticString {
        switch self {
        case .noSyndrome: "no instruction syndrome"
        case .cacheMaintenance: "cache maintenance"
        case .tableWalk: "stage-1 table walk"
        case .unsupportedWidth: "unsupported width"
        case .unaligned: "unaligned offset"
        case .outOfRange: "offset out of range"
        case .readOnly: "write to a read-only register"
        }
    }
}
