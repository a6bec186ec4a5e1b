import XCTest
import AArch64
import Translation
@testable import SMMUv3

final class SMMUAttachTests: XCTestCase {
    let edu = StreamID(bus: 0, device: 2, function: 0)  // SID 0x10
    let iova: UInt64 = 0x10_0000
    let pa: UInt64 = 0x5000_0000

    // MARK: Stage 1 (QEMU 7.2)

    func testStage1DMALandsOnMappedPageAndFaultsAfterUnmapAndInvalidate() throws {
        var h = try Harness(.qemu72)
        var (domain, tables) = try h.stage1Domain(asid: 1)
        h.map(&tables, iova, to: pa)
        try h.smmu.attach(edu, to: .stage1(domain), allocator: &h.allocator)

        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova + 0x18, write: true, value: 0xCAFE).0, .ok(PhysAddr(pa + 0x18)))
        XCTAssertEqual(h.memory.load64(PhysAddr(pa + 0x18)), 0xCAFE)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova + 0x18, write: false).1, 0xCAFE)

        h.unmap(&tables, iova)
        try h.smmu.invalidate(SMMUDomain.stage1(domain).invalidationScope, first: PageNumber(iova >> 12), pages: 1)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: true, value: 1).0, .fault(.translation))
        let (events, result) = h.drain()
        XCTAssertEqual(result, EventDrainResult(count: 1, overflowed: false))
        XCTAssertEqual(events.first?.kind, .translation)
        XCTAssertEqual(events.first?.stream, edu)
        XCTAssertEqual(events.first?.inputAddress, IOVA(iova))
        XCTAssertEqual(events.first?.isRead, false)
        XCTAssertEqual(h.fake.steViolations, [])
        XCTAssertEqual(h.fake.badAccesses, [])
    }

    /// The fake really caches: without the TLBI the stale translation is still used.
    func testFakeCatchesAMissingInvalidation() throws {
        var h = try Harness(.qemu72)
        var (domain, tables) = try h.stage1Domain(asid: 1)
        h.map(&tables, iova, to: pa)
        try h.smmu.attach(edu, to: .stage1(domain), allocator: &h.allocator)
        _ = h.fake.dma(stream: 0x10, iova: iova, write: false)
        h.unmap(&tables, iova)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: false).0, .ok(PhysAddr(pa)))
    }

    func testReadOnlyStage1PageRejectsWrites() throws {
        var h = try Harness(.qemu72)
        var (domain, tables) = try h.stage1Domain(asid: 1)
        h.map(&tables, iova, to: pa, writable: false)
        try h.smmu.attach(edu, to: .stage1(domain), allocator: &h.allocator)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: false).0, .ok(PhysAddr(pa)))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: true, value: 1).0, .fault(.permission))
        XCTAssertEqual(h.drain().0.map(\.kind), [.permission])
    }

    func testUnattachedStreamIsRecordedAndAborted() throws {
        var h = try Harness(.qemu72)
        // Two-level table: no L2 array for this span yet.
        XCTAssertEqual(h.fake.dma(stream: 0x300, iova: 0, write: false).0, .fault(.badStreamID))
        let (domain, _) = try h.stage1Domain(asid: 1)
        try h.smmu.attach(edu, to: .stage1(domain), allocator: &h.allocator)
        // Same span, V=0 STE.
        XCTAssertEqual(h.fake.dma(stream: 0x11, iova: 0, write: false).0, .fault(.badSTE))
        XCTAssertEqual(h.drain().0.map(\.kind), [.badStreamID, .badSTE])
    }

    func testDetachAbortsWithoutEvents() throws {
        var h = try Harness(.qemu72)
        var (domain, tables) = try h.stage1Domain(asid: 1)
        h.map(&tables, iova, to: pa)
        try h.smmu.attach(edu, to: .stage1(domain), allocator: &h.allocator)
        _ = h.fake.dma(stream: 0x10, iova: iova, write: false)
        try h.smmu.detach(edu)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: false).0, .aborted)
        XCTAssertEqual(h.drain().1.count, 0)
        XCTAssertEqual(h.smmu.entry(for: edu), .abort())
        XCTAssertNil(h.smmu.domain(of: edu))
        XCTAssertThrowsError(try h.smmu.detach(edu)) { XCTAssertEqual($0 as? AttachError, .notAttached(self.edu)) }
        XCTAssertEqual(h.fake.steViolations, [])
    }

    func testTwoLevelAllocatesOneL2ArrayPerSpanOnFirstUse() throws {
        var h = try Harness(.qemu72)
        let (domain, _) = try h.stage1Domain(asid: 1)
        let before = h.allocator.allocations
        try h.smmu.attach(StreamID(0x10), to: .stage1(domain), allocator: &h.allocator)
        try h.smmu.attach(StreamID(0x20), to: .stage1(domain), allocator: &h.allocator)
        XCTAssertEqual(h.allocator.allocations, before + 1)
        try h.smmu.attach(StreamID(0x1234), to: .stage1(domain), allocator: &h.allocator)
        XCTAssertEqual(h.allocator.allocations, before + 2)
        let l1 = StreamTableL1Descriptor(raw: h.memory.load64(h.smmu.streamTable.base.adding(0x12 * 8)))
        XCTAssertEqual(l1.span, 9)
        XCTAssertEqual(l1.l2Table.raw % (16 * 1024), 0)  // aligned to its 16 KiB size
        XCTAssertEqual((0..<h.smmu.attachments.count).map { h.smmu.attachments[$0].stream }, [StreamID(0x10), StreamID(0x20), StreamID(0x1234)])
        XCTAssertThrowsError(try h.smmu.attach(StreamID(0x1_0000), to: .stage1(domain), allocator: &h.allocator)) {
            XCTAssertEqual($0 as? AttachError, .streamOutOfRange(StreamID(0x1_0000), bits: 16))
        }
    }

    /// The attachment list stays sorted by StreamID through growth (past its
    /// first four slots), replacement, and removal at the front, middle and end.
    func testAttachmentListStaysSortedThroughGrowthReplaceAndRemove() throws {
        var h = try Harness(.qemu72)
        let (a, _) = try h.stage1Domain(asid: 1)
        let (b, _) = try h.stage1Domain(asid: 2)
        func streams(_ h: borrowing Harness) -> [UInt32] {
            (0..<h.smmu.attachments.count).map { h.smmu.attachments[$0].stream.raw }
        }
        for raw: UInt32 in [0x40, 0x10, 0x90, 0x20, 0x70, 0x08, 0x30, 0x80, 0x50] {
            try h.smmu.attach(StreamID(raw), to: .stage1(a), allocator: &h.allocator)
        }
        XCTAssertEqual(streams(h), [0x08, 0x10, 0x20, 0x30, 0x40, 0x50, 0x70, 0x80, 0x90])
        try h.smmu.attach(StreamID(0x30), to: .stage1(b), allocator: &h.allocator)
        XCTAssertEqual(streams(h), [0x08, 0x10, 0x20, 0x30, 0x40, 0x50, 0x70, 0x80, 0x90])
        XCTAssertEqual(h.smmu.domain(of: StreamID(0x30)), .stage1(b))
        XCTAssertEqual(h.smmu.domain(of: StreamID(0x40)), .stage1(a))
        for raw: UInt32 in [0x08, 0x40, 0x90] { try h.smmu.detach(StreamID(raw)) }
        XCTAssertEqual(streams(h), [0x10, 0x20, 0x30, 0x50, 0x70, 0x80])
        XCTAssertNil(h.smmu.domain(of: StreamID(0x40)))
        XCTAssertEqual(h.smmu.domain(of: StreamID(0x80)), .stage1(a))
        XCTAssertThrowsError(try h.smmu.detach(StreamID(0x40))) {
            XCTAssertEqual($0 as? AttachError, .notAttached(StreamID(0x40)))
        }
        XCTAssertEqual(streams(h), [0x10, 0x20, 0x30, 0x50, 0x70, 0x80])
        try h.smmu.attach(StreamID(0x60), to: .stage1(b), allocator: &h.allocator)
        XCTAssertEqual(streams(h), [0x10, 0x20, 0x30, 0x50, 0x60, 0x70, 0x80])
        XCTAssertThrowsError(try h.smmu.releaseStage1Domain(b)) {
            XCTAssertEqual($0 as? AttachError, .domainInUse(asid: 2))
        }
        XCTAssertTrue(h.smmu.attachments.usesStage1ASID(1))
        XCTAssertTrue(h.smmu.attachments.usesStage1ASID(2))
        XCTAssertFalse(h.smmu.attachments.usesStage1ASID(3))
        XCTAssertThrowsError(try h.smmu.makeStage1Domain(asid: 2, root: MFN(0x40100), inputBits: 39, mair: 0,
                                                         allocator: &h.allocator)) {
            XCTAssertEqual($0 as? AttachError, .domainInUse(asid: 2))
        }
    }

    func testStage2DomainRefusedWithoutStage2AndNothingChanges() throws {
        var h = try Harness(.qemu72)
        let (domain, _) = h.stage2Domain(vmid: 1)
        let writes = h.fake.registerWrites.count
        XCTAssertThrowsError(try h.smmu.attach(edu, to: .stage2(domain), allocator: &h.allocator)) {
            XCTAssertEqual($0 as? AttachError, .stage2Unsupported)
        }
        XCTAssertEqual(h.fake.registerWrites.count, writes)
        XCTAssertTrue(h.smmu.attachments.isEmpty)
    }

    func testDomainChecks() throws {
        var h = try Harness(.qemu72)
        XCTAssertThrowsError(try h.smmu.makeStage1Domain(asid: 1, root: MFN(0x40100), inputBits: 52, mair: 0,
                                                         allocator: &h.allocator)) {
            XCTAssertEqual($0 as? AttachError, .inputBitsOutOfRange(52))
        }
        XCTAssertThrowsError(try h.smmu.makeStage1Domain(asid: 1, root: MFN(1 << 33), inputBits: 39, mair: 0,
                                                         allocator: &h.allocator)) {
            XCTAssertEqual($0 as? AttachError, .rootOutOfRange(PhysAddr(1 << 45)))
        }
        let (domain, _) = try h.stage1Domain(asid: 7)
        try h.smmu.attach(edu, to: .stage1(domain), allocator: &h.allocator)
        XCTAssertThrowsError(try h.smmu.releaseStage1Domain(domain)) {
            XCTAssertEqual($0 as? AttachError, .domainInUse(asid: 7))
        }
        XCTAssertThrowsError(try h.smmu.makeStage1Domain(asid: 7, root: MFN(0x40100), inputBits: 39, mair: 0,
                                                         allocator: &h.allocator)) {
            XCTAssertEqual($0 as? AttachError, .domainInUse(asid: 7))
        }
        try h.smmu.detach(edu)
        try h.smmu.releaseStage1Domain(domain)
        XCTAssertEqual(h.fake.consumedCommands.suffix(2), [.tlbiNHASID(asid: 7), .sync()])
    }

    /// CD slots: 64 per zeroed frame (IHI 0070 5.4: a CD is 64 bytes), handed
    /// out lowest first; a released slot is cleared to V=0 (CD.V, dw0 bit 31)
    /// and handed out again before any fresh one, most recently released first.
    func testContextDescriptorSlotsLowestFirstAndReusedAfterRelease() throws {
        var h = try Harness(.qemu72)
        let memory = h.memory
        func cd(at slot: PhysAddr) -> ContextDescriptor {
            var cd = ContextDescriptor()
            cd.dw0 = memory.load64(slot)
            cd.dw1 = memory.load64(slot.adding(8))
            return cd
        }
        let before = h.allocator.allocations
        var domains: [Stage1Domain] = []
        for asid in 1...65 { domains.append(try h.smmu.makeStage1Domain(asid: UInt16(asid), root: MFN(0x40100), inputBits: 39, mair: 0,
                                                                allocator: &h.allocator)) }
        XCTAssertEqual(h.allocator.allocations, before + 2)
        let first = domains[0].contextDescriptor
        XCTAssertEqual(first.raw % 4096, 0)
        for (i, d) in domains.prefix(64).enumerated() {
            XCTAssertEqual(d.contextDescriptor, first.adding(UInt64(i) * 64))
            let descriptor = cd(at: d.contextDescriptor)
            XCTAssertTrue(descriptor.isValid)
            XCTAssertEqual(descriptor.asid, UInt16(i + 1))
        }
        let second = domains[64].contextDescriptor
        XCTAssertEqual(second.raw % 4096, 0)
        XCTAssertNotEqual(second.frame, first.frame)

        try h.smmu.releaseStage1Domain(domains[2])
        try h.smmu.releaseStage1Domain(domains[9])
        XCTAssertEqual(h.memory.load64(domains[2].contextDescriptor) & ContextDescriptor.valid, 0)
        XCTAssertEqual(h.memory.load64(domains[9].contextDescriptor) & ContextDescriptor.valid, 0)
        var again: [Stage1Domain] = []
        for asid: UInt16 in 100...102 {
            again.append(try h.smmu.makeStage1Domain(asid: asid, root: MFN(0x40100), inputBits: 39, mair: 0,
                                                     allocator: &h.allocator))
        }
        let (reused1, reused2, fresh) = (again[0], again[1], again[2])
        XCTAssertEqual(reused1.contextDescriptor, domains[9].contextDescriptor)
        XCTAssertEqual(reused2.contextDescriptor, domains[2].contextDescriptor)
        XCTAssertEqual(fresh.contextDescriptor, second.adding(64))
        XCTAssertEqual(h.allocator.allocations, before + 2)
        XCTAssertEqual(cd(at: reused2.contextDescriptor).asid, 101)
        XCTAssertEqual(cd(at: reused2.contextDescriptor).tableRoot, MFN(0x40100).address)
        // The slot released last held the link in dw1: all eight dwords are the new CD's now.
        let expected = ContextDescriptor.stage1(asid: 100, root: MFN(0x40100).address, inputBits: 39,
                                                ipsCode: h.smmu.features.outputAddressSizeCode, mair: 0,
                                                coherent: h.smmu.coherent)
        for i in 0..<ContextDescriptor.dwordCount {
            XCTAssertEqual(h.memory.load64(reused1.contextDescriptor.adding(UInt64(i) * 8)), expected[word: i], "dw\(i)")
        }
    }

    // MARK: Stage 2 (QEMU 10)

    func testStage2DMAThroughTheSharedP2MAndFaultWithIPA() throws {
        var h = try Harness(.qemu10)
        var (domain, tables) = h.stage2Domain(vmid: 3)
        h.map(&tables, iova, to: pa)
        h.map(&tables, iova + 0x1000, to: pa + 0x7000, writable: false)
        try h.smmu.attach(edu, to: .stage2(domain), allocator: &h.allocator)
        XCTAssertEqual(h.smmu.entry(for: edu), .stage2(vmid: 3, vtcr: tables.vtcr, root: tables.root.address,
                                                                  attributeTypesOverride: false))

        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova + 8, write: true, value: 42).0, .ok(PhysAddr(pa + 8)))
        XCTAssertEqual(h.memory.load64(PhysAddr(pa + 8)), 42)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova + 0x1000, write: true, value: 1).0, .fault(.permission))

        h.unmap(&tables, iova)
        try h.smmu.invalidate(SMMUDomain.stage2(domain).invalidationScope, first: PageNumber(iova >> 12), pages: 1)
        XCTAssertEqual(h.fake.consumedCommands.suffix(2), [.tlbiS2IPA(vmid: 3, ipa: IPA(iova)), .sync()])
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: false).0, .fault(.translation))
        let events = h.drain().0
        XCTAssertEqual(events.map(\.kind), [.permission, .translation])
        XCTAssertEqual(events.last?.isStage2, true)
        XCTAssertEqual(events.last?.ipa, IPA(iova))
        XCTAssertEqual(events.last?.isRead, true)
        XCTAssertEqual(events.last?.faultClass, .inputAddress)
    }

    /// STE.SHCFG (dw1 [45:44]) on a translating STE: "use incoming" (0b01) where
    /// SMMU_IDR1.ATTR_TYPES_OVR (bit 27) makes it an override, since 0b00 would
    /// force stage-2 DMA non-shareable; 0 (RES0) where the SMMU has no override.
    func testAttachedSTEsUseIncomingShareabilityWhereTheSMMUOverrides() throws {
        var overriding = FakeSMMU.Profile.qemu10
        overriding.idr1 |= 1 << 27
        for (profile, expected) in [(overriding, UInt64(0b01)), (FakeSMMU.Profile.qemu10, 0)] {
            for mode in [TranslationMode.stage2, .stage1] {
                var h = try Harness(profile, configuration: SMMUConfiguration(mode: mode))
                XCTAssertEqual(h.smmu.features.attributeTypesOverride, expected == 1)
                var tables: TestTables
                if mode == .stage2 {
                    let (domain, t) = h.stage2Domain(vmid: 3)
                    tables = t
                    try h.smmu.attach(edu, to: .stage2(domain), allocator: &h.allocator)
                } else {
                    let (domain, t) = try h.stage1Domain(asid: 3)
                    tables = t
                    try h.smmu.attach(edu, to: .stage1(domain), allocator: &h.allocator)
                }
                let ste = try XCTUnwrap(h.smmu.entry(for: edu))
                XCTAssertEqual(ste.dw1 >> 44 & 0b11, expected, "\(mode), ATTR_TYPES_OVR \(expected)")
                // The fake refuses SHCFG != 0 where it is RES0: DMA still works.
                h.map(&tables, iova, to: pa)
                XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: false).0, .ok(PhysAddr(pa)))
            }
        }
    }

    /// A stage-2 domain's IPA (64 - S2T0SZ) must fit the SMMU's IAS: with AArch64
    /// tables only and OAS 36, IAS is 36 and a 40-bit P2M is refused with a typed
    /// error, leaving the live STE, the stream table and the queue untouched. With
    /// AArch32 LPAE tables too, IAS is 40 and the same domain is used.
    func testStage2DomainWiderThanTheIASIsRefusedAndTheSTEKept() throws {
        var narrow = FakeSMMU.Profile.qemu10
        narrow.idr5 = narrow.idr5 & ~7 | 1  // OAS 36 bits
        var h = try Harness(narrow)
        XCTAssertEqual(h.smmu.features.intermediateAddressBits, 36)
        let (s1, s1TablesMade) = try h.stage1Domain(asid: 4)
        var s1Tables = s1TablesMade
        h.map(&s1Tables, iova, to: pa)
        try h.smmu.attach(edu, to: .stage1(s1), allocator: &h.allocator)
        let before = h.smmu.entry(for: edu)
        let commands = h.fake.consumedCommands.count
        let allocations = h.allocator.allocations
        let (s2, _) = h.stage2Domain(vmid: 3)  // 40-bit IPA
        let allocationsAfterTables = h.allocator.allocations
        XCTAssertThrowsError(try h.smmu.attach(edu, to: .stage2(s2), allocator: &h.allocator)) { error in
            XCTAssertEqual(error as? AttachError, .stage2InputBitsOutOfRange(40, supported: 25...36))
        }
        XCTAssertEqual(h.smmu.entry(for: edu), before)
        XCTAssertEqual(h.smmu.domain(of: edu), .stage1(s1))
        XCTAssertEqual(h.fake.consumedCommands.count, commands)
        XCTAssertEqual(h.allocator.allocations, allocationsAfterTables)
        XCTAssertGreaterThan(allocationsAfterTables, allocations)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: false).0, .ok(PhysAddr(pa)))

        var both = narrow
        both.idr0 |= 1 << 2  // TTF[0]: AArch32 LPAE tables as well
        var wide = try Harness(both)
        XCTAssertEqual(wide.smmu.features.intermediateAddressBits, 40)
        var (domain, tables) = wide.stage2Domain(vmid: 3)
        wide.map(&tables, iova, to: pa)
        try wide.smmu.attach(edu, to: .stage2(domain), allocator: &wide.allocator)
        XCTAssertEqual((wide.smmu.entry(for: edu)?.dw2 ?? 0) >> 32 & 0x3F, 24)  // S2T0SZ = 64 - 40
        XCTAssertEqual(wide.fake.dma(stream: 0x10, iova: iova, write: false).0, .ok(PhysAddr(pa)))
    }

    func testVTTBRDomainInit() {
        let d = Stage2Domain(vttbr: VTTBR(raw: 0x0003_0000_4010_0001), vtcr: 0x8002_3558)
        XCTAssertEqual(d.vmid, 3)
        XCTAssertEqual(d.root, PhysAddr(0x4010_0000))
    }

    // MARK: Live STE updates

    func testReattachToAnotherDomainNeverExposesAMixedSTE() throws {
        var h = try Harness(.qemu10, configuration: SMMUConfiguration(mode: .stage1))
        let (a, taTables) = try h.stage1Domain(asid: 1)
        let (b, tbTables) = try h.stage1Domain(asid: 2)
        var ta = taTables, tb = tbTables
        h.map(&ta, iova, to: pa)
        h.map(&tb, iova, to: pa + 0x10000)
        try h.smmu.attach(edu, to: .stage1(a), allocator: &h.allocator)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: false).0, .ok(PhysAddr(pa)))
        try h.smmu.attach(edu, to: .stage1(b), allocator: &h.allocator)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: false).0, .ok(PhysAddr(pa + 0x10000)))
        // Stage 1 -> stage 2 changes dw0, dw2 and dw3: it must go through abort.
        let (s2, t2Tables) = h.stage2Domain(vmid: 9)
        var t2 = t2Tables
        h.map(&t2, iova, to: pa + 0x20000)
        try h.smmu.attach(edu, to: .stage2(s2), allocator: &h.allocator)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: false).0, .ok(PhysAddr(pa + 0x20000)))
        XCTAssertEqual(h.fake.steViolations, [])
    }

    /// The checker is real: publishing dw0 before the other dwords is caught.
    func testFakeFlagsDwordZeroWrittenFirst() throws {
        var h = try Harness(.qemu10)
        let (d1, _) = h.stage2Domain(vmid: 1)
        try h.smmu.attach(edu, to: .stage2(d1), allocator: &h.allocator)
        let address = h.smmu.streamTable.entryAddress(edu, memory: h.memory)!
        let bad = StreamTableEntry.stage2(vmid: 2, vtcr: d1.vtcr, root: PhysAddr(0x4800_0000),
                                          attributeTypesOverride: false)
        for i in [0, 2, 3] { h.memory.store64(address.adding(UInt64(i) * 8), bad[word: i]) }
        try h.smmu.push(.cfgiSTE(stream: edu))
        try h.smmu.sync()
        XCTAssertEqual(h.fake.steViolations.count, 1)
    }

    // MARK: Non-coherent SMMU

    func testNonCoherentSMMUOnlyReadsCleanedMemory() throws {
        var h = try Harness(.qemu72NonCoherent)
        XCTAssertFalse(h.smmu.coherent)
        XCTAssertEqual(h.fake.cr1, 0)  // NC, non-shareable
        var (domain, tables) = try h.stage1Domain(asid: 1)
        h.map(&tables, iova, to: pa)
        try h.smmu.attach(edu, to: .stage1(domain), allocator: &h.allocator)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: true, value: 5).0, .ok(PhysAddr(pa)))
        h.unmap(&tables, iova)
        try h.smmu.invalidate(SMMUDomain.stage1(domain).invalidationScope, first: PageNumber(iova >> 12), pages: 3)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: true, value: 5).0, .fault(.translation))
        XCTAssertEqual(h.drain().0.map(\.kind), [.translation])
        XCTAssertEqual(h.memory.staleDeviceReads, [])
        // Queue entries were cleaned and a DSB issued before every CMDQ_PROD write.
        let ops = h.cacheLog.operations
        XCTAssertTrue(ops.contains { if case .clean(let a, _) = $0 { return a == h.smmu.commandQueue.base } else { return false } })
        XCTAssertEqual(ops.last, .synchronize)
    }

    /// The model is real: an STE written without a clean is a stale read.
    func testFakeFlagsAnUncleanedSTE() throws {
        var h = try Harness(.qemu72NonCoherent)
        let (domain, _) = try h.stage1Domain(asid: 1)
        try h.smmu.attach(edu, to: .stage1(domain), allocator: &h.allocator)
        let address = h.smmu.streamTable.entryAddress(edu, memory: h.memory)!
        h.memory.store64(address.adding(8), 0)
        try h.smmu.push(.cfgiSTE(stream: edu))
        try h.smmu.sync()
        _ = h.fake.dma(stream: 0x10, iova: iova, write: false)
        XCTAssertFalse(h.memory.staleDeviceReads.isEmpty)
    }

    func testSingleDwordChangeIsWrittenInPlace() throws {
        var h = try Harness(.qemu10)
        let (d, _) = h.stage2Domain(vmid: 1)
        try h.smmu.attach(edu, to: .stage2(d), allocator: &h.allocator)
        let mark = h.fake.consumedCommands.count
        // Same table, new VMID: only dw2 changes, so no abort interlude.
        try h.smmu.attach(edu, to: .stage2(Stage2Domain(vmid: 2, root: d.root, vtcr: d.vtcr)), allocator: &h.allocator)
        XCTAssertEqual(Array(h.fake.consumedCommands[mark...]), [.cfgiSTE(stream: edu), .sync()])
        XCTAssertEqual(h.smmu.entry(for: edu), .stage2(vmid: 2, vtcr: d.vtcr, root: d.root,
                                                                  attributeTypesOverride: false))
        XCTAssertEqual(h.fake.steViolations, [])
    }

    func testLinearStreamTableTranslates() throws {
        var h = try Harness(.qemu72, configuration: SMMUConfiguration(maximumStreamIDBits: 6))
        var (domain, tables) = try h.stage1Domain(asid: 4)
        h.map(&tables, iova, to: pa)
        try h.smmu.attach(edu, to: .stage1(domain), allocator: &h.allocator)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: false).0, .ok(PhysAddr(pa)))
        XCTAssertEqual(h.fake.dma(stream: 0x11, iova: iova, write: false).0, .fault(.badSTE))
        XCTAssertEqual(h.fake.dma(stream: 0x40, iova: iova, write: false).0, .fault(.badStreamID))
    }

    /// The fake caches configurations: an STE rewritten without CFGI_STE is not seen.
    func testFakeCatchesAMissingConfigurationInvalidation() throws {
        var h = try Harness(.qemu72)
        var (domain, tables) = try h.stage1Domain(asid: 1)
        h.map(&tables, iova, to: pa)
        try h.smmu.attach(edu, to: .stage1(domain), allocator: &h.allocator)
        _ = h.fake.dma(stream: 0x10, iova: iova, write: false)
        let address = h.smmu.streamTable.entryAddress(edu, memory: h.memory)!
        h.memory.store64(address, StreamTableEntry.abort().dw0)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: false).0, .ok(PhysAddr(pa)))
        try h.smmu.push(.cfgiSTE(stream: edu))
        try h.smmu.sync()
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: false).0, .aborted)
    }
}
