import XCTest
import AArch64
@testable import Platform

private func text(_ bytes: UnsafeRawBufferPointer) -> String { String(decoding: bytes, as: UTF8.self) }

final class FlattenedDeviceTreeTests: XCTestCase {
    // MARK: Walking real dumps

    func testEveryQEMUDumpValidatesAndWalks() throws {
        for name in Fixture.qemuDumps {
            try withTree(Fixture.bytes(name)) { tree in
                let names = tree.nodes.map { text(tree.name(of: $0)) }
                XCTAssertEqual(names.first, "", name)
                XCTAssertTrue(names.contains("smmuv3@9050000"), name)
                XCTAssertTrue(names.contains("pcie@10000000"), name)
                XCTAssertTrue(names.contains("cpu@0"), name)
                XCTAssertEqual(names.contains("cpu@1"), name.contains("smp2"), name)
                XCTAssertEqual(Array(tree.memoryReservations), [], name)
            }
        }
    }

    func testChildrenDepthAndParents() throws {
        try withTree(Fixture.bytes(Fixture.virt1G)) { tree in
            let cpus = try XCTUnwrap(tree.child(of: tree.root, named: "cpus"))
            XCTAssertEqual(cpus.depth, 1)
            XCTAssertEqual(cpus.parentOffset, tree.root.offset)
            let cpu0 = try XCTUnwrap(tree.child(of: cpus, named: "cpu@0"))
            XCTAssertEqual(cpu0.depth, 2)
            XCTAssertEqual(tree.parent(of: cpu0), cpus)
            XCTAssertNil(tree.parent(of: tree.root))
            // Children are direct only: cpu@0 is not a child of the root.
            XCTAssertFalse(tree.children(of: tree.root).contains(cpu0))
            XCTAssertTrue(tree.subtree(of: tree.root).contains(cpu0))
            XCTAssertEqual(try tree.addressCells(of: cpus), 1)
            XCTAssertEqual(try tree.sizeCells(of: cpus), 0)
        }
    }

    func testPathsMatchWithAndWithoutUnitAddress() throws {
        try withTree(Fixture.bytes(Fixture.virt1G)) { tree in
            let uart = try XCTUnwrap(tree.node(atPath: "/pl011@9000000"))
            XCTAssertEqual(text(tree.baseName(of: uart)), "pl011")
            XCTAssertEqual(tree.node(atPath: "/pl011"), uart)
            XCTAssertEqual(tree.node(atPath: "/cpus/cpu@0"), tree.node(atPath: "/cpus/cpu"))
            XCTAssertEqual(tree.node(atPath: "/"), tree.root)
            XCTAssertNil(tree.node(atPath: "/pl011@9000001"))
            XCTAssertNil(tree.node(atPath: "/nonexistent/child"))
            XCTAssertNil(tree.node(atPath: "noalias"))
        }
    }

    func testAliasResolution() throws {
        try withTree(Fixture.bytes(Fixture.sparse)) { tree in
            let uart = try XCTUnwrap(tree.node(atPath: "/soc/serial@90000"))
            XCTAssertEqual(tree.node(atPath: "serial0"), uart)
            XCTAssertEqual(tree.node(atPath: "/soc@1c000000/serial"), uart)
            XCTAssertNil(tree.node(atPath: "serial1"))
        }
    }

    func testPhandleLookupFollowsRenumbering() throws {
        // -smp changes QEMU's phandles: find the SMMU through the PCIe iommu-map each time.
        for name in Fixture.qemuDumps {
            try withTree(Fixture.bytes(name)) { tree in
                let pcie = try XCTUnwrap(tree.node(atPath: "/pcie@10000000"))
                let map = try XCTUnwrap(tree.property("iommu-map", of: pcie))
                let handle = tree.value(of: map).bigEndianUInt32(at: 4)
                let smmu = try XCTUnwrap(tree.node(withPhandle: handle), name)
                XCTAssertEqual(text(tree.name(of: smmu)), "smmuv3@9050000", name)
                XCTAssertNil(tree.node(withPhandle: 0xDEAD))
            }
        }
    }

    func testStringListsAndCompatible() throws {
        try withTree(Fixture.bytes(Fixture.virt1G)) { tree in
            let psci = try XCTUnwrap(tree.node(atPath: "/psci"))
            let list = try tree.strings(try XCTUnwrap(tree.property("compatible", of: psci))).map(text)
            XCTAssertEqual(list, ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])
            XCTAssertTrue(tree.isCompatible(psci, with: "arm,psci"))
            XCTAssertFalse(tree.isCompatible(psci, with: "arm,psci-2.0"))
            XCTAssertFalse(tree.isCompatible(psci, with: "arm,psc"))
            // A NUL-separated family: any entry matches, whole entries only.
            XCTAssertTrue(tree.isCompatible(psci, withAnyOf: "arm,gic-v3\0arm,psci-0.2"))
            XCTAssertTrue(tree.isCompatible(psci, withAnyOf: "arm,psci-1.0\0x"))
            XCTAssertFalse(tree.isCompatible(psci, withAnyOf: "arm,psc\0arm,psci-2.0\0psci"))
            XCTAssertFalse(tree.isCompatible(psci, withAnyOf: "arm,psci-0.2arm,psci"))
            XCTAssertEqual(try tree.u32("cpu_on", of: psci), 0xC400_0003)
            XCTAssertNil(try tree.u32("absent", of: psci))
        }
    }

    /// Section 2.3.4: `status` absent, "okay" or the legacy "ok" is enabled;
    /// anything else (a prefix, an extension, an unterminated value) is not.
    func testStatusValues() throws {
        var b = FDTBuilder()
        b.begin("")
        let cases: [(String, [UInt8]?, Bool)] = [
            ("absent", nil, true), ("okay", Array("okay\0".utf8), true), ("ok", Array("ok\0".utf8), true),
            ("disabled", Array("disabled\0".utf8), false), ("o", Array("o\0".utf8), false),
            ("okayy", Array("okayy\0".utf8), false), ("unterminated", Array("okay".utf8), false),
            ("empty", [0], false),
        ]
        for (name, status, _) in cases {
            b.begin(name)
            if let status { b.property("status", status) }
            b.end()
        }
        b.end()
        try withTree(b.blob()) { tree in
            for (name, _, enabled) in cases {
                let node = try XCTUnwrap(Array(name.utf8).withUnsafeBytes { tree.child(of: tree.root, matching: $0) },
                                         name)
                XCTAssertEqual(tree.isEnabled(node), enabled, name)
            }
        }
    }

    func testPropertiesInOrder() throws {
        try withTree(Fixture.bytes(Fixture.virt1G)) { tree in
            let memory = try XCTUnwrap(tree.node(atPath: "/memory"))
            XCTAssertEqual(tree.properties(of: memory).map { text(tree.name(of: $0)) }, ["reg", "device_type"])
            XCTAssertEqual(try tree.string(try XCTUnwrap(tree.property("device_type", of: memory))).count, 6)
        }
    }

    /// `string` is the value up to its first NUL; a value that does not end
    /// in NUL (or is empty) is `unterminatedString` at its node.
    func testStringIsTheFirstEntryAndNeedsItsTerminator() throws {
        var b = FDTBuilder()
        b.begin("")
        b.property("two", [0x61, 0x62, 0, 0x63, 0])
        b.property("open", [0x61, 0x62])
        b.property("empty", [])
        b.end()
        try withTree(b.blob()) { tree in
            let two = try XCTUnwrap(tree.property("two", of: tree.root))
            XCTAssertEqual(Array(try tree.string(two)), [0x61, 0x62])
            for name: StaticString in ["open", "empty"] {
                let property = try XCTUnwrap(tree.property(name, of: tree.root))
                XCTAssertThrowsError(try tree.string(property), "\(name)") {
                    XCTAssertEqual($0 as? FDTError, .unterminatedString(node: tree.root.offset))
                }
            }
        }
    }

    func testNopTokensAreSkipped() throws {
        var b = FDTBuilder()
        b.nop()
        b.begin("")
        b.nop()
        b.property("#address-cells", cells: [1])
        b.nop()
        b.begin("a@1")
        b.nop()
        b.property("x", cells: [7])
        b.end()
        b.nop()
        b.end()
        b.nop()
        try withTree(b.blob()) { tree in
            let a = try XCTUnwrap(tree.node(atPath: "/a"))
            XCTAssertEqual(try tree.u32("x", of: a), 7)
            XCTAssertEqual(try tree.u32("#address-cells", of: tree.root), 1)
            XCTAssertEqual(tree.nodes.map { $0.depth }, [0, 1])
        }
    }

    func testChildrenAreExactlyTheLevelBelowInOrder() throws {
        var b = FDTBuilder()
        b.begin("")
        b.begin("a")
        b.property("x", cells: [1])
        b.begin("a1")
        b.begin("a11")
        b.end()
        b.end()
        b.nop()
        b.begin("a2")
        b.end()
        b.end()
        b.begin("b")
        b.end()
        b.end()
        try withTree(b.blob()) { tree in
            let names = { (nodes: [FDTNode]) in nodes.map { text(tree.name(of: $0)) } }
            XCTAssertEqual(names(Array(tree.children(of: tree.root))), ["a", "b"])
            let a = try XCTUnwrap(tree.node(atPath: "/a"))
            let children = Array(tree.children(of: a))
            XCTAssertEqual(names(children), ["a1", "a2"])
            XCTAssertEqual(children.map { $0.depth }, [2, 2])
            XCTAssertEqual(children.map { $0.parentOffset }, [a.offset, a.offset])
            XCTAssertEqual(children, Array(tree.subtree(of: a)).filter { $0.depth == 2 })
            XCTAssertEqual(names(Array(tree.children(of: try XCTUnwrap(tree.node(atPath: "/a/a1/a11"))))), [])
            XCTAssertEqual(names(Array(tree.children(of: try XCTUnwrap(tree.node(atPath: "/b"))))), [])
        }
    }

    func testMemoryReservationsFromSparseBlob() throws {
        try withTree(Fixture.bytes(Fixture.sparse)) { tree in
            XCTAssertEqual(Array(tree.memoryReservations), [MemoryRange(base: PhysAddr(0x8001_0000), size: 0x3000)!])
        }
    }

    func testDeepButAllowedNesting() throws {
        var b = FDTBuilder()
        for i in 0..<FlattenedDeviceTree.maxDepth { b.begin(i == 0 ? "" : "n\(i)") }
        for _ in 0..<FlattenedDeviceTree.maxDepth { b.end() }
        try withTree(b.blob()) { tree in
            XCTAssertEqual(tree.nodes.map { $0.depth }.max(), FlattenedDeviceTree.maxDepth - 1)
        }
    }
}
