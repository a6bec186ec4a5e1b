import XCTest
import AArch64
@testable import Platform

/// A 16550 as a register file: records every access (offset and width), and
/// answers LSR with THRE clear for `busyPolls` reads.
final class Fake16550: RegisterBlock, NarrowRegisterBlock {
    enum Access: Equatable { case read(Int, width: Int), write(Int, UInt32, width: Int) }
    let lsrOffset: Int
    var busyPolls = 0
    var accesses: [Access] = []
    var transmitted: [UInt8] { accesses.compactMap { if case .write(_, let v, _) = $0 { UInt8(v) } else { nil } } }

    init(lsrOffset: Int) { self.lsrOffset = lsrOffset }

    private func lsr(_ offset: Int, _ width: Int) -> UInt32 {
        accesses.append(.read(offset, width: width))
        precondition(offset == lsrOffset, "only LSR is read")
        if busyPolls > 0 {
            busyPolls -= 1
            return 0x01           // DR only: THR still full
        }
        return 0x60               // THRE | TEMT
    }
    func read8(_ offset: Int) -> UInt8 { UInt8(lsr(offset, 1)) }
    func read16(_ offset: Int) -> UInt16 { UInt16(lsr(offset, 2)) }
    func read32(_ offset: Int) -> UInt32 { lsr(offset, 4) }
    func write8(_ offset: Int, _ value: UInt8) { accesses.append(.write(offset, UInt32(value), width: 1)) }
    func write16(_ offset: Int, _ value: UInt16) { accesses.append(.write(offset, UInt32(value), width: 2)) }
    func write32(_ offset: Int, _ value: UInt32) { accesses.append(.write(offset, value, width: 4)) }
    func read64(_ offset: Int) -> UInt64 { fatalError("16550 registers are at most 32-bit") }
    func write64(_ offset: Int, _ value: UInt64) { fatalError("16550 registers are at most 32-bit") }
}

final class NS16550Tests: XCTestCase {
    func testRegisterIndicesAndBits() {
        XCTAssertEqual(NS16550Register.transmitHolding, 0)
        XCTAssertEqual(NS16550Register.lineStatus, 5)
        XCTAssertEqual(NS16550Register.transmitHoldingEmpty, 0x20)
    }

    func testLayoutScalesOffsetsByRegShift() {
        // (reg-shift, LSR offset): 0x5, 0xa, 0x14 (the BCM2835 mini UART's 0x54 - 0x40), 0x28.
        for (shift, lsr) in [(0, 0x05), (1, 0x0A), (2, 0x14), (3, 0x28)] {
            let layout = NS16550Layout(regShift: UInt32(shift), ioWidth: 4)!
            XCTAssertEqual(layout.offset(of: NS16550Register.lineStatus), lsr)
            XCTAssertEqual(layout.offset(of: NS16550Register.transmitHolding), 0)
        }
    }

    func testLayoutRejectsWhatTheBindingDoesNotAllow() {
        XCTAssertNil(NS16550Layout(regShift: 0, ioWidth: 3))
        XCTAssertNil(NS16550Layout(regShift: 0, ioWidth: 8))
        XCTAssertNil(NS16550Layout(regShift: 0, ioWidth: 0))
        XCTAssertNil(NS16550Layout(regShift: 6, ioWidth: 1))
        XCTAssertNotNil(NS16550Layout(regShift: 5, ioWidth: 2))
    }

    func testAccessWidthFollowsRegIOWidth() {
        for width in [1, 2, 4] {
            let fake = Fake16550(lsrOffset: 5 << 2)
            let uart = NS16550(registers: fake, layout: NS16550Layout(regShift: 2, ioWidth: UInt32(width))!)
            XCTAssertTrue(uart.write(0x41))
            XCTAssertEqual(fake.accesses, [.read(0x14, width: width), .write(0x00, 0x41, width: width)], "width \(width)")
        }
    }

    func testWaitsForTHRE() {
        let fake = Fake16550(lsrOffset: 5)
        fake.busyPolls = 3
        let uart = NS16550(registers: fake, layout: NS16550Layout(regShift: 0, ioWidth: 1)!)
        XCTAssertTrue(uart.write(UInt8(ascii: "h")))
        XCTAssertEqual(fake.transmitted, [0x68])
        XCTAssertEqual(fake.accesses.count, 5)   // four LSR reads, one THR write
    }

    func testAWedgedUARTDropsInsteadOfHanging() {
        let fake = Fake16550(lsrOffset: 5)
        fake.busyPolls = 100
        let uart = NS16550(registers: fake, layout: NS16550Layout(regShift: 0, ioWidth: 1)!, spinLimit: 10)
        XCTAssertFalse(uart.write(0x41))
        XCTAssertEqual(fake.transmitted, [])
        XCTAssertEqual(fake.accesses.count, 10)
    }
}
