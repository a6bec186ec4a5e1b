/// Who decides a lower EL's PSCI calls once `HostExitHandler` has decoded
/// the SMCCC function ID (DEN0028) and its arguments.
public protocol PSCIPolicy {
    mutating func decide(_ function: PSCIFunction, smc64: Bool, x1: UInt64, x2: UInt64, x3: UInt64,
                         cpu: Int) -> PSCIDecision
}

/// The host's PSCI: mediated (CPU_ON through the hypervisor's entry, the
/// rest forwarded or ended as the mediator decides).
extension PSCIMediator: PSCIPolicy {}

/// PSCI for a guest the hypervisor runs that owns no physical CPU and no say
/// over the machine's power (the board's one-page test guest): every PSCI
/// function, CPU_ON, SYSTEM_OFF and SYSTEM_RESET included, is answered
/// NOT_SUPPORTED (X0 = -1) at EL2, and nothing reaches the firmware. A guest
/// that could forward CPU_ON would start a physical CPU at EL2 where it chose.
public struct IsolatedGuestPSCI: PSCIPolicy, Sendable {
    public init() {}

    public func decide(_ function: PSCIFunction, smc64: Bool, x1: UInt64, x2: UInt64, x3: UInt64,
                       cpu: Int) -> PSCIDecision {
        .answer(PSCIReturn.notSupported)
    }
}
