/// A block of memory-mapped device registers, addressed by byte offset.
///
/// The board conformance (in `Hypervisor`) uses volatile accesses; host tests
/// use in-memory fakes that model the device. Used as a generic parameter,
/// never as `any RegisterBlock`, so both instantiations are fully specialised.
public protocol RegisterBlock {
    func read32(_ offset: Int) -> UInt32
    func write32(_ offset: Int, _ value: UInt32)
    func read64(_ offset: Int) -> UInt64
    func write64(_ offset: Int, _ value: UInt64)
}
