import XCTest
import AArch64
import HostFakes
@testable import Translation

/// The stage-2 descriptor of every p2m type, pinned bit by bit (Xen's
/// `p2m_set_permission` / `p2m_set_entry` choices, Arm ARM descriptor encodings).
final class P2MTypeTests: XCTestCase {
    // Page at MFN 0x40123. Fields: [1:0] 0b11, MemAttr [5:2], S2AP [7:6], SH [9:8], AF [10],
    // XN [54:53], type in SW [58:55].
    static let pages: [(P2MType, UInt64)] = [
        (.ramRW, 0x0080_0000_4012_37FF),               // WB, RW, inner, executable
        (.ramRO, 0x0100_0000_4012_377F),               // WB, RO, inner, executable
        (.mmioDirectDevice, 0x01C0_0000_4012_36C7),    // nGnRE, RW, outer, XN
        (.mmioDirectNC, 0x0240_0000_4012_36D7),        // Normal NC, RW, outer, XN
        (.mmioDirectCacheable, 0x02C0_0000_4012_37FF), // WB, RW, inner, XN
        (.mapForeignRW, 0x0340_0000_4012_37FF),
        (.mapForeignRO, 0x03C0_0000_4012_377F),
        (.grantMapRW, 0x0440_0000_4012_37FF),
        (.grantMapRO, 0x04C0_0000_4012_377F),
        (.iommuMapRW, 0x0540_0000_4012_37FF),
        (.iommuMapRO, 0x05C0_0000_4012_377F),
    ]

    func testPageDescriptorOfEveryType() throws {
        for (type, raw) in Self.pages {
            let d = Stage2Descriptor.leaf(MFN(raw: 0x4_0123), level: 3, attributes: type.stage2Attributes())
            XCTAssertEqual(d.raw, raw, "\(type) \(String(d.raw, radix: 16))")
            XCTAssertEqual(P2MType(softwareBits: d.softwareBits), type)
        }
        XCTAssertEqual(Set(Self.pages.map { $0.0 }).count, P2MType.allCases.count - 1)
    }

    func testEveryTypeAtEveryLeafLevelThroughTheP2M() throws {
        for (type, pageRaw) in Self.pages {
            let rig = Rig()
            var p2m = try rig.makeP2M()
            var batch = ramBatch()
            // Level 3 page, level 2 block (2 MiB), level 1 block (1 GiB).
            let cases: [(level: Int, gfn: UInt64, mfn: UInt64, count: UInt64)] = [
                (3, 0x123, 0x4_0123, 1), (2, 0x200, 0x4_0200, 512), (1, 0x4_0000, 0x4_0000, 1 << 18),
            ]
            for c in cases {
                try p2m.map(GFN(raw: c.gfn), to: MFN(raw: c.mfn), count: c.count, as: type, flushing: &batch, holding: lockHeld)
                let leaf = try XCTUnwrap(p2m.table.lookup(c.gfn, memory: rig.memory))
                XCTAssertEqual(leaf.level, c.level)
                // Same attributes at every level; bit 1 clear for blocks; the block's own address.
                let expected = pageRaw & ~Stage2Descriptor.outputAddressMask & ~(c.level == 3 ? 0 : 0b10)
                    | c.mfn << 12
                XCTAssertEqual(leaf.descriptor, expected, "\(type) level \(c.level)")
                XCTAssertEqual(p2m.lookup(GFN(raw: c.gfn)), P2MMapping(mfn: MFN(raw: c.mfn), type: type,
                                                                       order: PageOrder(leafLevel: c.level)))
            }
            p2m.commit(&batch, holding: lockHeld)
        }
    }

    func testAccessRestrictionOnlyRemovesPermissions() {
        let mfn = MFN(raw: 0x4_0123)
        func raw(_ t: P2MType, _ a: P2MAccess) -> UInt64 {
            Stage2Descriptor.leaf(mfn, level: 3, attributes: t.stage2Attributes(access: a)).raw
        }
        XCTAssertEqual(raw(.ramRW, .read), 0x00C0_0000_4012_377F)        // RO, XN
        XCTAssertEqual(raw(.ramRW, .none), 0x00C0_0000_4012_373F)        // no access, XN
        XCTAssertEqual(raw(.ramRW, .readExecute), 0x0080_0000_4012_377F) // RO, executable
        XCTAssertEqual(raw(.ramRO, .all), 0x0100_0000_4012_377F)         // cannot add write
        XCTAssertEqual(raw(.grantMapRW, .all), 0x0440_0000_4012_37FF)    // cannot add execute
        XCTAssertEqual(raw(.ramRW, .write), 0x00C0_0000_4012_37BF)       // write-only, XN
    }

    func testTypePredicates() {
        XCTAssertEqual(P2MType.allCases.filter { $0.isExecutable }, [.ramRW, .ramRO])
        XCTAssertEqual(P2MType.grantMapRO.dmaWritable, false)
        XCTAssertEqual(P2MType.grantMapRW.dmaWritable, true)
        XCTAssertNil(P2MType.mmioDirectDevice.dmaWritable)
        XCTAssertNil(P2MType.invalid.dmaWritable)
        XCTAssertTrue(P2MType.ramRW.canChange(to: .ramRO))
        XCTAssertTrue(P2MType.ramRO.canChange(to: .ramRW))
        XCTAssertFalse(P2MType.grantMapRO.canChange(to: .grantMapRW))
        XCTAssertFalse(P2MType.ramRW.canChange(to: .mapForeignRW))
        XCTAssertNil(P2MType(softwareBits: 12))
        XCTAssertTrue(P2MType.allCases.allSatisfy { $0.rawValue < 16 })
    }

    /// Every (from, to) pair: exactly the RW/RO halves of RAM and IOMMU-only
    /// mappings both ways, and write-protecting a grant or foreign mapping.
    func testTypeTransitionsAllowedAreExactlyThese() {
        let allowed: [(P2MType, P2MType)] = [(.ramRW, .ramRO), (.ramRO, .ramRW), (.iommuMapRW, .iommuMapRO),
                                              (.iommuMapRO, .iommuMapRW), (.grantMapRW, .grantMapRO),
                                              (.mapForeignRW, .mapForeignRO)]
        for from in P2MType.allCases {
            for to in P2MType.allCases {
                let expected = allowed.contains { $0.0 == from && $0.1 == to }
                XCTAssertEqual(from.canChange(to: to), expected, "\(from) -> \(to)")
            }
        }
    }
}
