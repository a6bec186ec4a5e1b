import Synchronization

/// Who ends the run. Any of the host's CPUs can end it at any moment (the
/// host's SYSTEM_OFF or SYSTEM_RESET, an exit the hypervisor cannot serve),
/// and the end reads shared state no lock covers any more (the counts, the
/// SMMU's event queue, the stacks' paint) and powers the machine off. Only the
/// first CPU to claim the end goes on; every other one parks, so the report
/// is one CPU's, printed once. The claimer itself arriving again means the
/// report faulted: it must power off at once instead of parking silently.
public struct RunEndLatch: ~Copyable, Sendable {
    /// 0 while open, else the claiming CPU's index plus one.
    let claimer = Atomic<UInt64>(0)

    public enum Claim: Equatable, Sendable {
        /// This CPU ends the run.
        case first
        /// This CPU had already claimed it: its report faulted.
        case again
        /// Another CPU ends the run.
        case taken
    }

    public init() {}

    /// One compare-exchange, so two CPUs that arrive together cannot both
    /// find the latch open.
    public borrowing func claim(cpu: UInt64) -> Claim {
        let mark = cpu &+ 1
        let (exchanged, original) = claimer.compareExchange(expected: 0, desired: mark,
                                                            ordering: .acquiringAndReleasing)
        if exchanged { return .first }
        return original == mark ? .again : .taken
    }

    public var isClaimed: Bool { claimer.load(ordering: .acquiring) != 0 }
}
