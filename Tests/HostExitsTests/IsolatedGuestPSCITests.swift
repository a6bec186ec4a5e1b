import AArch64
import XCTest
@testable import HostExits

/// The board's test guest runs with HCR_EL2.TSC set: its SMCs come to EL2 and
/// take the host's SMCCC path with `IsolatedGuestPSCI`, which forwards nothing.
final class IsolatedGuestPSCITests: XCTestCase {
    private var regs = TestRegisters()
    private var policy = IsolatedGuestPSCI()

    private func call(_ ec: UInt64, x0: UInt64, x1: UInt64 = 0, x2: UInt64 = 0, x3: UInt64 = 0,
                      elr: UInt64 = 0x8000_0040) -> HostExitOutcome? {
        regs = TestRegisters()
        regs.setX(0, x0); regs.setX(1, x1); regs.setX(2, x2); regs.setX(3, x3)
        // ESR_EL2: EC [31:26], IL [25], ISS imm16 0.
        let exit = HostExit(syndrome: ExceptionSyndrome(raw: ec << 26 | 1 << 25), elr: elr, spsr: 0x3C5)
        return HostExitHandler.firmwareCall(exit, cpu: 0, registers: &regs, policy: &policy)
    }

    func testNoPSCICallOfTheGuestReachesTheFirmware() {
        // (X0 = function ID, X1..X3): CPU_ON (SMC64 and SMC32), SYSTEM_OFF, SYSTEM_RESET, SYSTEM_RESET2,
        // CPU_OFF, PSCI_VERSION, AFFINITY_INFO, CPU_SUSPEND.
        let calls: [(UInt64, UInt64, UInt64, UInt64)] = [
            (0xC400_0003, 1, 0x8000_0000, 0), (0x8400_0003, 1, 0x8000_0000, 0), (0x8400_0008, 0, 0, 0),
            (0x8400_0009, 0, 0, 0), (0xC400_0012, 0, 0, 0), (0x8400_0002, 0, 0, 0), (0x8400_0000, 0, 0, 0),
            (0xC400_0004, 1, 0, 0), (0xC400_0001, 0, 0x8000_0000, 0),
        ]
        for (x0, x1, x2, x3) in calls {
            // SMC (EC 0x17): resumes after the SMC (ELR + 4), X0 = NOT_SUPPORTED.
            XCTAssertEqual(call(0x17, x0: x0, x1: x1, x2: x2, x3: x3),
                           HostExitOutcome(decision: .resume(pc: 0x8000_0044), kind: .psci), "\(x0)")
            XCTAssertEqual(regs.x(0), UInt64.max, "\(x0)")
            XCTAssertEqual(regs.x(1), x1)
            // HVC (EC 0x16): ELR is already past it.
            XCTAssertEqual(call(0x16, x0: x0, x1: x1, x2: x2, x3: x3),
                           HostExitOutcome(decision: .resume(pc: 0x8000_0040), kind: .psci), "\(x0)")
            XCTAssertEqual(regs.x(0), UInt64.max, "\(x0)")
        }
    }

    func testSMCCCDiscoveryIsAnsweredAsForTheHost() {
        XCTAssertEqual(call(0x17, x0: 0x8000_0000), HostExitOutcome(decision: .resume(pc: 0x8000_0044), kind: .smcccOther))
        XCTAssertEqual(regs.x(0), 0x1_0001)     // SMCCC_VERSION 1.1
        XCTAssertEqual(call(0x17, x0: 0xC600_0000)?.kind, .smcccOther)   // vendor hypervisor service: not supported
        XCTAssertEqual(regs.x(0), UInt64.max)
    }

    func testOtherExceptionClassesAreNotFirmwareCalls() {
        XCTAssertNil(call(0x24, x0: 0x8400_0008))   // data abort
        XCTAssertNil(call(0x01, x0: 0x8400_0008))   // WFI
        XCTAssertEqual(regs.x(0), 0x8400_0008)      // registers untouched
    }

    func testTheHostsMediatorStillForwardsSystemOffAsARunEnd() throws {
        var mediator = try PSCIMediator(cpuMPIDRs: [0], bootCPU: 0, hypervisorEntry: PhysAddr(raw: 0x4008_0000),
                                        hostRAM: virtLayout())
        regs = TestRegisters()
        regs.setX(0, 0x8400_0008)
        let exit = HostExit(syndrome: ExceptionSyndrome(raw: 0x17 << 26 | 1 << 25), elr: 0x1000, spsr: 0x3C5)
        XCTAssertEqual(HostExitHandler.firmwareCall(exit, cpu: 0, registers: &regs, policy: &mediator),
                       HostExitOutcome(decision: .endRun(.systemOff), kind: .psci))
    }
}
