/// A PCI function's bus/device/function triple (PCIe Base 5.0, section 2.2.6.2).
public struct BDF: Equatable, Comparable, Sendable {
    public static let deviceCount: UInt8 = 32
    public static let functionCount: UInt8 = 8
    static let busShift: UInt16 = 8
    static let deviceShift: UInt16 = 3

    public let bus: UInt8
    public let device: UInt8
    public let function: UInt8

    /// `nil` unless `device < 32` and `function < 8`.
    public init?(bus: UInt8, device: UInt8, function: UInt8) {
        guard device < BDF.deviceCount, function < BDF.functionCount else { return nil }
        self.bus = bus
        self.device = device
        self.function = function
    }

    public init(requesterID: UInt16) {
        bus = UInt8(truncatingIfNeeded: requesterID >> BDF.busShift)
        device = UInt8(truncatingIfNeeded: requesterID >> BDF.deviceShift) & (BDF.deviceCount - 1)
        function = UInt8(truncatingIfNeeded: requesterID) & (BDF.functionCount - 1)
    }

    /// The requester ID the function puts on its DMA: `bus<<8 | dev<<3 | fn`.
    /// Through an `iommu-map` it becomes the SMMU StreamID.
    public var requesterID: UInt16 {
        UInt16(bus) << BDF.busShift | UInt16(device) << BDF.deviceShift | UInt16(function)
    }

    public static func < (a: BDF, b: BDF) -> Bool { a.requesterID < b.requesterID }
}
