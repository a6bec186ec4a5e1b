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
        uart.writeHex(0x9050000, minimumDigits: 8)
        uart.writeHex(0xAB, minimumDigits: 0)
        uart.writeCharacter(UInt8(ascii: "\n"))
        uart.writeCharacter(UInt8(ascii: "z"))
        XCTAssertEqual(String(decoding: fake.transmitted, as: UTF8.self), "EL2\r\n0x090500000xab\r\nz")
    }

    func text(_ body: (PL011<FakeUART>) -> Void) -> String {
        let fake = FakeUART()
        body(PL011(registers: fake))
        return String(decoding: fake.transmitted, as: UTF8.self)
    }

    func testHexRows() {
        let rows: [(UInt64, Int, String)] = [
            (0, 1, "0x0"), (0, 0, "0x0"), (0, 4, "0x0000"), (0xF, 1, "0xf"), (0x10, 1, "0x10"),
            (0x4008_0000, 1, "0x40080000"), (0x1234, 2, "0x1234"), (0x5, 2, "0x05"),
            (UInt64.max, 1, "0xffffffffffffffff"), (UInt64.max, 20, "0xffffffffffffffff"),
            (1 << 63, 1, "0x8000000000000000"),
        ]
        for (value, minimum, expected) in rows {
            XCTAssertEqual(text { $0.writeHex(value, minimumDigits: minimum) }, expected)
        }
        XCTAssertEqual(text { $0.writeHexDigits(0x11E8, minimumDigits: 4) }, "11e8")
        XCTAssertEqual(text { $0.writeHexDigits(0x1, minimumDigits: 2) }, "01")
        XCTAssertEqual(text { $0.writeHexDigits(0x010802, minimumDigits: 6) }, "010802")
    }

    func testDecimalRows() {
        let rows: [(UInt64, String)] = [
            (0, "0"), (9, "9"), (10, "10"), (99, "99"), (100, "100"), (262_144, "262144"),
            (10_000_000_000_000_000_000, "10000000000000000000"), (UInt64.max, "18446744073709551615"),
        ]
        for (value, expected) in rows { XCTAssertEqual(text { $0.writeDecimal(value) }, expected) }
        XCTAssertEqual(text { $0.writeDecimal(-42) }, "-42")
        XCTAssertEqual(text { $0.writeDecimal(Int.min) }, "-9223372036854775808")
        XCTAssertEqual(text { $0.writeDecimal(Int.max) }, "9223372036854775807")
        XCTAssertEqual(text { $0.writeDecimal(0 as Int) }, "0")
    }
}
