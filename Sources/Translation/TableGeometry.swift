import AArch64

/// The shape of one translation regime's tables: where the walk starts, how many
/// tables are concatenated at the root, and how wide input and output are.
public struct TableGeometry: Equatable, Sendable {
    public let startLevel: Int
    public let rootTables: Int
    public let inputBits: Int
    public let outputBits: Int

    /// A stage-2 walk as VTCR_EL2 describes it; outputs limited to the PA range (at most 48 bits).
    public init(vtcr: VTCR, paRange: PhysicalAddressRange) {
        startLevel = vtcr.startLevel
        rootTables = vtcr.rootTables
        inputBits = vtcr.ipaBits
        outputBits = min(paRange.bits, VTCR.maxIPABits)
    }

    /// A stage-1 walk (TCR T0SZ = 64 - inputBits): stage 1 has no concatenation, so the
    /// start level is the one whose single table covers the input (Arm ARM, initial lookup level of a translation table walk).
    public init(stage1InputBits: Int, outputBits: Int) throws(Stage2ConfigurationError) {
        guard stage1InputBits >= VTCR.minIPABits, stage1InputBits <= VTCR.maxIPABits else {
            throw .ipaSizeUnsupported(stage1InputBits)
        }
        var level = TableLevel.leafLevel
        while Int(TableLevel.shift(level)) + TableLevel.bitsPerLevel < stage1InputBits { level -= 1 }
        startLevel = level
        rootTables = 1
        inputBits = stage1InputBits
        // Checked here, once, for the limits below (the stage-2 init has it from
        // the PA range, at least 32 bits).
        precondition(outputBits >= Int(PageSize.shift4K), "an output size of at least one page")
        self.outputBits = min(outputBits, VTCR.maxIPABits)
    }

    // Both sizes are 12...48 bits (the inits check it), so the limits need no
    // checked arithmetic: the trapping subtraction and conversion were two
    // checks at every use, on every edit's input and output validation.

    /// Input frames (pages) the regime can translate: [0, limit).
    @inline(__always) public var inputFrameLimit: UInt64 {
        1 &<< UInt64(truncatingIfNeeded: inputBits &- Int(PageSize.shift4K))
    }
    /// Output frames the regime can produce: [0, limit).
    @inline(__always) public var outputFrameLimit: UInt64 {
        1 &<< UInt64(truncatingIfNeeded: outputBits &- Int(PageSize.shift4K))
    }
}
