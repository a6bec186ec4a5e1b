import XCTest
import AArch64
@testable import Platform

final class FakeUART: RegisterBlock {
    var fullPolls = 0
    var transmitted: [UInt8] = []
    var flagReads = 0
    func read32(_ offset: Int) -> UInt32 {
        precondition(offset == 0x18, "only FR is read")
        flagReads += 1
        if fullPolls > 0 {
            fullPolls -= 1
            return 1 << 5
        }
        return 0x90   // TXFE | RXFE: idle
    }
    func write32(_ offset: Int, _ value: UInt32) {
        precondition(offset == 0x00, "only DR is written")
        transmitted.append(UInt8(value))
    }
    func read64(_ offset: Int) -> UInt64 { fatalError("PL011 registers are 32-bit") }
    func write64(_ offset: Int, _ value: UInt64) { fatalError("PL011 registers are 32-bit") }
}

final class PL011Tests: XCTestCase {
    func testRegisterOffsetsAndBits() {
        XCTAssertEqual(PL011Register.data, 0x00)
        XCTAssertEqual(PL011Register.flags, 0x18)
        XCTAssertEqual(PL011Register.transmitFIFOFull, 0x20)
    }

    func testWaitsWhileTheFIFOIsFull() {
        let fake = FakeUART()
        fake.fullPolls = 3
        let uart = PL011(registers: fake)
        XCTAssertTrue(uart.write(UInt8(ascii: "A")))
        XCTAssertEqual(fake.transmitted, [0x41])
        XCTAssertEqual(fake.flagReads, 4)
    }

    func testAWedgedUARTDropsInsteadOfHanging() {
        let fake = FakeUART()
        fake.fullPolls = 100
        let uart = PL011(registers: fake, spinLimit: 10)
        XCTAssertFalse(uart.write(0x41))
        XCTAssertFalse(uart.tryWrite(0x41))
        XCTAssertEqual(fake.transmitted, [])
    }

    func testTextAndHex() {
        let fake = FakeUART()
        let uart = PL011(registers: fake)
        uart.write("EL2\n")
        uart.writeHex(0x9050000, digits: 8)
        uart.writeHex(0xAB, digits: 0)
        XCTAssertEqual(String(decoding: fake.transmitted, as: UTF8.self), "EL2\r\n0x090500000xb")
    }
}
