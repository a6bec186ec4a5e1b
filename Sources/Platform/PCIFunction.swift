/// What configuration space says about one function.
public struct PCIFunction: Equatable, Sendable {
    public let address: BDF
    public let vendorID: UInt16
    public let deviceID: UInt16
    public let revision: UInt8
    /// Base class [23:16], sub-class [15:8], programming interface [7:0].
    public let classCode: UInt32
    /// Header layout without the multi-function bit: 0 endpoint, 1 bridge.
    public let headerLayout: UInt8
    public let isMultiFunction: Bool

    /// Reads the identity registers; `nil` when nothing answers.
    public init?(reading config: some PCIConfigAccess, at address: BDF) {
        let id = config.read32(address, PCIConfigRegister.id)
        let vendor = UInt16(truncatingIfNeeded: id)
        guard vendor != PCIConfigRegister.absentVendor else { return nil }
        self.address = address
        vendorID = vendor
        deviceID = UInt16(truncatingIfNeeded: id >> 16)
        let classRevision = config.read32(address, PCIConfigRegister.classRevision)
        revision = UInt8(truncatingIfNeeded: classRevision)
        classCode = classRevision >> 8
        let header = UInt8(truncatingIfNeeded: config.read32(address, PCIConfigRegister.headerDword)
                           >> PCIConfigRegister.headerTypeShift)
        headerLayout = header & PCIConfigRegister.headerLayoutMask
        isMultiFunction = header & PCIConfigRegister.multiFunctionBit != 0
    }

    /// Number of BARs the header layout has (type 0: 6, type 1: 2, other: 0).
    public var barCount: Int {
        switch headerLayout {
        case 0: return 6
        case 1: return 2
        default: return 0
        }
    }
}

/// Every function on buses `firstBus...lastBus`, in BDF order. Functions
/// 1-7 are probed only when function 0 exists and sets the multi-function
/// bit (PCIe Base 5.0, section 7.5.1.1.9). At most 256 x 32 x 8 probes.
public struct PCIFunctionScan<Config: PCIConfigAccess>: Sequence, IteratorProtocol {
    let config: Config
    let lastBus: UInt8
    var bus: UInt8
    var device: UInt8 = 0
    var function: UInt8 = 0
    var functionLimit: UInt8 = 1
    var done = false

    public init(_ config: Config, firstBus: UInt8, lastBus: UInt8) {
        self.config = config
        self.bus = firstBus
        self.lastBus = lastBus
        done = firstBus > lastBus
    }

    public mutating func next() -> PCIFunction? {
        while !done {
            guard let address = BDF(bus: bus, device: device, function: function) else { return nil }
            let found = PCIFunction(reading: config, at: address)
            if function == 0 {
                functionLimit = found?.isMultiFunction == true ? BDF.functionCount : 1
            }
            advance()
            if let found { return found }
        }
        return nil
    }

    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    private mutating func advance() {
        function += 1
        if function < functionLimit { return }
        function = 0
        device += 1
        if device < BDF.deviceCount { return }
        device = 0
        if bus == lastBus {
            done = true
        } else {
            bus += 1
        }
    }
}

extension PCIECAM {
    /// Every function this ECAM reaches.
    public var functions: PCIFunctionScan<PCIECAM<Registers>> {
        PCIFunctionScan(self, firstBus: firstBus, lastBus: lastBus)
    }
}
