import XCTest
import AArch64
@testable import SMMUv3

/// Event records decoded from raw words (IHI 0070 7.3), including the records
/// captured from QEMU 7.2 (HARDWARE.md section 5).
final class SMMUEventTests: XCTestCase {
    func testQEMUCapturedWriteToUnmappedIOVA() {
        let e = SMMUEvent(words: (0x0000_0010, 0x0000_0008, 0, 0, 0x0020_0000, 0, 0, 0))
        XCTAssertEqual(e.kind, .translation)
        XCTAssertEqual(e.stream, StreamID(8))
        XCTAssertNil(e.substream)
        XCTAssertFalse(e.isRead)
        XCTAssertFalse(e.isStage2)
        XCTAssertEqual(e.inputAddress, IOVA(0x20_0000))
        XCTAssertNil(e.ipa)
        // QEMU 7.2 leaves CLASS = 0 where the architecture says IN (2).
        XCTAssertEqual(e.faultClass, .contextDescriptorFetch)
    }

    func testQEMUCapturedReadOfUnmappedIOVA() {
        let e = SMMUEvent(words: (0x0000_0010, 0x0000_0008, 0, 0x0000_0008, 0x0020_0000, 0, 0, 0))
        XCTAssertTrue(e.isRead)  // word 3 bit 3 = dw1 bit 35 = RnW
        XCTAssertEqual(e.kind, .translation)
    }

    func testQEMUCapturedBadSTE() {
        let e = SMMUEvent(words: (0x0000_0004, 0x0000_0008, 0, 0, 0, 0, 0, 0))
        XCTAssertEqual(e.kind, .badSTE)
        XCTAssertEqual(e.stream, StreamID(8))
        XCTAssertNil(e.fetchAddress)
    }

    func testStage2PermissionFaultFields() {
        // SSV + SSID 5, SID 0x10; RnW=0, S2=1, CLASS=IN(2), PnU, InD; IPA in dw3 [51:12].
        let e = SMMUEvent(dw0: 0x13 | 1 << 11 | 5 << 12 | 0x10 << 32,
                          dw1: 1 << 39 | 2 << 40 | 1 << 33 | 1 << 34,
                          dw2: 0x1234_5678, dw3: 0x0000_0008_1234_5000 | 0xFFF)
        XCTAssertEqual(e.kind, .permission)
        XCTAssertEqual(e.substream, 5)
        XCTAssertEqual(e.stream, StreamID(0x10))
        XCTAssertTrue(e.isStage2)
        XCTAssertTrue(e.isPrivileged)
        XCTAssertTrue(e.isInstruction)
        XCTAssertFalse(e.isRead)
        XCTAssertEqual(e.faultClass, .inputAddress)
        XCTAssertEqual(e.ipa, IPA(0x8_1234_5000))
        XCTAssertEqual(e.inputAddress, IOVA(0x1234_5678))
    }

    func testFetchAbortCarriesFetchAddress() {
        let e = SMMUEvent(dw0: 0x0B | 3 << 32, dw1: 1 << 40, dw2: 0x1000, dw3: 0x4000_0FF8)
        XCTAssertEqual(e.kind, .walkExternalAbort)
        XCTAssertEqual(e.faultClass, .tableWalk)
        XCTAssertEqual(e.fetchAddress, PhysAddr(0x4000_0FF8))
    }

    func testEveryArchitectedIDDecodes() {
        let table: [(UInt8, SMMUEvent.Kind)] = [
            (0x01, .unsupportedUpstreamTransaction), (0x02, .badStreamID), (0x03, .steFetch), (0x04, .badSTE),
            (0x06, .streamDisabled), (0x07, .translationForbidden), (0x08, .badSubstreamID), (0x09, .cdFetch),
            (0x0A, .badCD), (0x0B, .walkExternalAbort), (0x10, .translation), (0x11, .addressSize),
            (0x12, .access), (0x13, .permission), (0x20, .tlbConflict), (0x21, .configConflict), (0x24, .other(0x24)),
        ]
        for (id, kind) in table { XCTAssertEqual(SMMUEvent.Kind(id: id), kind, "id \(id)") }
    }
}
