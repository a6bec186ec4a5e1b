import AArch64
import Platform
import ArchC

/// Exits from the host, on the CPU that took them. The board reads the
/// syndrome and registers, the portable decision says what to do, and the
/// board applies it; nothing here allocates or can trap on a host-chosen value.
extension LinuxHost {
    /// Vector kind 8: synchronous from a lower EL in AArch64 (Boot/vectors.S).
    static let lowerELSynchronous: UInt64 = 8

    static func exit(_ frame: UnsafeMutablePointer<UInt64>, _ kind: UInt64) {
        guard kind == lowerELSynchronous else { reportUnexpected(frame, kind) }
        reportUnexpected(frame, kind)
    }
}
