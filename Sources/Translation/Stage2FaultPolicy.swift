import AArch64

/// What the hypervisor does about one stage-2 abort: a value its exception
/// handler applies, so the decision itself runs under XCTest.
public enum Stage2FaultAction: Equatable, Sendable {
    /// The access is refused and has no effect; the guest resumes at
    /// `resumeAt`, the instruction after the one that faulted.
    case skipInstruction(resumeAt: UInt64)
    /// Map a fresh zeroed frame at this GFN, then resume at the same
    /// instruction, which retries the access.
    case populate(GFN)
    /// Nothing the hypervisor can answer: the guest is given an abort of its
    /// own (a synchronous external abort at its EL1 vector).
    case injectAbort
}

/// Which stage-2 aborts of a domain the hypervisor serves, and how:
/// - a data write to a page mapped read-only is refused and skipped (the
///   domain may read that page but not change it);
/// - a translation fault inside the populate-on-demand window gets a frame,
///   also when it hit a stage-1 table walk (the table lives in that window);
/// - everything else (reads or fetches the stage-2 permissions forbid, faults
///   outside the window, access flag and address size faults, external
///   aborts) is the guest's error and comes back to it as an abort.
public struct Stage2FaultPolicy: Equatable, Sendable {
    /// The GFNs `[firstOnDemand, firstOnDemand + onDemandCount)` are populated on first touch.
    public var firstOnDemand: GFN
    public var onDemandCount: UInt64

    /// An A64 instruction, or A32 (ESR.IL = 1); T32 16-bit when IL = 0.
    static let longInstruction: UInt64 = 4
    static let shortInstruction: UInt64 = 2

    public init(populatingOnDemand first: GFN, count: UInt64) {
        firstOnDemand = first
        onDemandCount = count
    }

    public func populatesOnDemand(_ gfn: GFN) -> Bool {
        gfn >= firstOnDemand && gfn.raw - firstOnDemand.raw < onDemandCount
    }

    /// `elr` is the guest's ELR_EL2, the faulting instruction. The guest
    /// controls it, so the arithmetic wraps rather than traps.
    public func action(for abort: Stage2Abort, elr: UInt64) -> Stage2FaultAction {
        switch abort.fault {
        case .permission where abort.access == .write && !abort.onStage1Walk:
            let length = abort.syndrome.is32BitInstruction ? Self.longInstruction : Self.shortInstruction
            return .skipInstruction(resumeAt: elr &+ length)
        case .translation:
            guard let page = abort.page, populatesOnDemand(page) else { return .injectAbort }
            return .populate(page)
        default:
            return .injectAbort
        }
    }
}
