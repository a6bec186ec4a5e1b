/// A StreamID (for PCI: the requester ID, `bus << 8 | devfn`).
public struct StreamID: Equatable, Comparable, Sendable {
    public var raw: UInt32
    public init(_ raw: UInt32) { self.raw = raw }
    public init(bus: UInt8, device: UInt8, function: UInt8) {
        raw = UInt32(bus) << 8 | UInt32(device & 0x1F) << 3 | UInt32(function & 0x7)
    }
    public static func < (a: StreamID, b: StreamID) -> Bool { a.raw < b.raw }
}
