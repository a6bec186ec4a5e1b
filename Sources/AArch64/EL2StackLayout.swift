/// Where each CPU's EL2 stacks lie and which pages around them are guard
/// pages (left invalid in the EL2 map, so running off a stack is a
/// translation fault at EL2 instead of a silent overwrite of the next CPU's
/// stack, the BSS or the page tables).
///
/// Every CPU slot is the same, from `base + slot * slotBytes` upwards:
///
///     [guard page][exception stack][guard page][stack]
///
/// The stack is SP_EL2 (the hypervisor's work for that CPU); the exception
/// stack is SP_EL0, which EL2's own exceptions switch to (Boot/vectors.S), so
/// a fault caused by the stack running into its guard page can still be
/// reported. Boot/include/host.h states the same sizes for the assembly;
/// the board checks the two agree before it relies on them.
public struct EL2StackLayout: Equatable, Sendable {
    public static let guardBytes: UInt64 = 4096
    public let base: UInt64
    public let cpus: Int
    public let exceptionStackBytes: UInt64
    public let stackBytes: UInt64

    /// Which guard page an address is in.
    public enum Guard: Equatable, Sendable {
        case exceptionStack(cpu: Int)
        case stack(cpu: Int)
    }

    /// Nil unless every piece is a non-zero number of whole pages and the
    /// slots end below 2^64.
    public init?(base: UInt64, cpus: Int, exceptionStackBytes: UInt64, stackBytes: UInt64) {
        let page = Self.guardBytes - 1
        guard cpus > 0, base & page == 0, exceptionStackBytes > 0, exceptionStackBytes & page == 0,
              stackBytes > 0, stackBytes & page == 0 else { return nil }
        let (slot, o1) = (2 * Self.guardBytes).addingReportingOverflow(exceptionStackBytes)
        let (slot2, o2) = slot.addingReportingOverflow(stackBytes)
        let (all, o3) = slot2.multipliedReportingOverflow(by: UInt64(cpus))
        let (_, o4) = base.addingReportingOverflow(all)
        guard !o1, !o2, !o3, !o4 else { return nil }
        self.base = base
        self.cpus = cpus
        self.exceptionStackBytes = exceptionStackBytes
        self.stackBytes = stackBytes
    }

    // `init` proved base + slotBytes * cpus below 2^64, so the sums and
    // products below (each at most that) use wrapping arithmetic: the
    // overflow traps they would carry could never fire.
    public var slotBytes: UInt64 { 2 &* Self.guardBytes &+ exceptionStackBytes &+ stackBytes }
    public var end: UInt64 { base &+ slotBytes &* UInt64(cpus) }
    /// Offset of the exception stack's top within a slot.
    public var exceptionStackTopOffset: UInt64 { Self.guardBytes &+ exceptionStackBytes }

    /// `offset` bytes into `cpu`'s slot (nil outside `0..<cpus`); `offset` is
    /// at most `slotBytes`.
    func inSlot(_ cpu: Int, _ offset: UInt64) -> UInt64? {
        guard cpu >= 0 && cpu < cpus else { return nil }
        return base &+ UInt64(cpu) &* slotBytes &+ offset
    }

    /// The initial SP_EL0 of `cpu` (nil outside `0..<cpus`).
    public func exceptionStackTop(cpu: Int) -> UInt64? { inSlot(cpu, exceptionStackTopOffset) }

    /// The lowest address of `cpu`'s stack (its guard page is the page below).
    public func stackBase(cpu: Int) -> UInt64? { inSlot(cpu, exceptionStackTopOffset &+ Self.guardBytes) }

    /// The initial SP_EL2 of `cpu`.
    public func stackTop(cpu: Int) -> UInt64? { inSlot(cpu, slotBytes) }

    /// The guard page holding `address`, if any.
    public func guardPage(containing address: UInt64) -> Guard? {
        guard address >= base && address < end else { return nil }
        let cpu = Int((address &- base) / slotBytes)
        let offset = (address &- base) % slotBytes
        if offset < Self.guardBytes { return .exceptionStack(cpu: cpu) }
        if offset &- exceptionStackTopOffset < Self.guardBytes { return .stack(cpu: cpu) }
        return nil
    }
}
