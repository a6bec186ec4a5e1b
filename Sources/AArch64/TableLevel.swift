/// Geometry of the VMSAv8-64 4 KiB-granule table walk (Arm ARM "Translation
/// table level" and "Concatenated translation tables").
///
/// Each table is one 4 KiB page of 512 eight-byte descriptors; each level resolves
/// 9 address bits; level 3 resolves bits [20:12]. Blocks exist at levels 1 and 2.
public enum TableLevel {
    /// 512 descriptors of 8 bytes per 4 KiB table.
    public static let bitsPerLevel = 9
    public static let entriesPerTable = 1 << bitsPerLevel
    public static let descriptorBytes: UInt64 = 8
    /// The level whose entries map 4 KiB pages.
    public static let leafLevel = 3
    /// The lowest-numbered level that may hold a block descriptor with the 4 KiB granule
    /// (level 1, 1 GiB; a level-0 block needs FEAT_LPA2, which this component does not use).
    public static let firstBlockLevel = 1
    /// The most tables the architecture lets a stage-2 walk concatenate at its start level.
    public static let maxConcatenatedTables = 16

    /// Input-address bit at which `level` starts indexing (39, 30, 21, 12).
    @_transparent public static func shift(_ level: Int) -> UInt64 {
        PageSize.shift4K + UInt64(bitsPerLevel * (leafLevel - level))
    }
    /// 4 KiB pages spanned by one entry at `level` (512^(3-level)).
    @_transparent public static func pagesPerEntry(_ level: Int) -> UInt64 {
        1 &<< UInt64(bitsPerLevel * (leafLevel - level))
    }
}
