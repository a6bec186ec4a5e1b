import XCTest
import AArch64
import Translation

/// Raw ID register values in, the P2M's configuration out: one row per
/// combination the board meets (QEMU `max`, Cortex-A57, an SMMU that outputs
/// fewer bits than the CPU) and the edges (a 32-bit PA, encodings above 52 bits).
final class P2MConfigurationCPUTests: XCTestCase {
    static let a57 = CPUIDRegisters(mmfr0: 0x1124, mmfr1: 0, isar0: 0x1_1120)

    func cpu(paRange: UInt64, vmid16: Bool) -> CPUIDRegisters {
        CPUIDRegisters(mmfr0: 0x0011_2120 | paRange, mmfr1: vmid16 ? 0x1_1120 : 0x1_1100, isar0: 0)
    }

    func testRows() {
        struct Row {
            let cpu: CPUIDRegisters
            let maximumIPABits: Int
            let otherWalker: PhysicalAddressRange?
            let ipaBits: Int
            let paRange: PhysicalAddressRange
            let vmidWidth: VMIDWidth
        }
        let rows: [Row] = [
            // QEMU max: 52-bit PA capped at 48, 40-bit IPA, 16-bit VMID.
            Row(cpu: cpu(paRange: 0x6, vmid16: true), maximumIPABits: 40, otherWalker: nil,
                ipaBits: 40, paRange: .bits48, vmidWidth: .bits16),
            // The same CPU sharing its table with QEMU's SMMU (OAS 44 bits).
            Row(cpu: cpu(paRange: 0x6, vmid16: true), maximumIPABits: 40, otherWalker: .bits44,
                ipaBits: 40, paRange: .bits44, vmidWidth: .bits16),
            // Cortex-A57: 44-bit PA, 8-bit VMID.
            Row(cpu: Self.a57, maximumIPABits: 40, otherWalker: nil, ipaBits: 40, paRange: .bits44, vmidWidth: .bits8),
            // A 32-bit PA narrows the IPA too.
            Row(cpu: cpu(paRange: 0x0, vmid16: false), maximumIPABits: 40, otherWalker: nil,
                ipaBits: 32, paRange: .bits32, vmidWidth: .bits8),
            // An SMMU narrower than the CPU narrows both.
            Row(cpu: Self.a57, maximumIPABits: 40, otherWalker: .bits36, ipaBits: 36, paRange: .bits36, vmidWidth: .bits8),
            // 56 bits (0b0111) and a reserved encoding: at least 52, so 48.
            Row(cpu: cpu(paRange: 0x7, vmid16: true), maximumIPABits: 48, otherWalker: nil,
                ipaBits: 48, paRange: .bits48, vmidWidth: .bits16),
            Row(cpu: cpu(paRange: 0xF, vmid16: false), maximumIPABits: 44, otherWalker: .bits52,
                ipaBits: 44, paRange: .bits48, vmidWidth: .bits8),
        ]
        for (i, row) in rows.enumerated() {
            let configuration = if let other = row.otherWalker {
                P2MConfiguration(vmid: 7, cpu: row.cpu, maximumIPABits: row.maximumIPABits, sharedWith: other)
            } else {
                P2MConfiguration(vmid: 7, cpu: row.cpu, maximumIPABits: row.maximumIPABits)
            }
            XCTAssertEqual(configuration, P2MConfiguration(vmid: 7, ipaBits: row.ipaBits, paRange: row.paRange,
                                                           vmidWidth: row.vmidWidth), "row \(i)")
        }
    }

    func testDefaultIPASizeIs40Bits() {
        XCTAssertEqual(P2MConfiguration(vmid: 1, cpu: Self.a57).ipaBits, 40)
        XCTAssertEqual(P2MConfiguration(vmid: 1, cpu: cpu(paRange: 0x1, vmid16: false)).ipaBits, 36)
    }

    /// What the configuration turns into: VTCR_EL2.PS and VS follow the decoded fields.
    func testVTCRFromTheDecodedConfiguration() throws {
        let configuration = P2MConfiguration(vmid: 1, cpu: cpu(paRange: 0x6, vmid16: true), maximumIPABits: 40,
                                             sharedWith: .bits44)
        let vtcr = try VTCR(ipaBits: configuration.ipaBits, paRange: configuration.paRange,
                            vmidWidth: configuration.vmidWidth)
        XCTAssertEqual(vtcr.raw >> 16 & 0b111, 0b100)     // PS: 44 bits
        XCTAssertEqual(vtcr.raw >> 19 & 1, 1)             // VS: 16-bit VMID
        XCTAssertEqual(vtcr.raw & 0x3F, 64 - 40)          // T0SZ
    }
}
