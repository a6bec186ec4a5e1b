/// One of the host's device address spaces (an SMMU context the host's
/// devices translate through; vfio's `struct vfio_domain`).
public struct DMADomain: Equatable, Sendable {
    public let id: UInt16
    /// The devices behind it snoop the CPU caches (seed 003).
    public let enforcesCacheCoherency: Bool

    public init(id: UInt16, enforcesCacheCoherency: Bool) {
        self.id = id
        self.enforcesCacheCoherency = enforcesCacheCoherency
    }
}
