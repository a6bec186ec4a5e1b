import AArch64
import HostFakes
import Ownership
import XCTest
@testable import HostExits

final class HostExitHandlerTests: XCTestCase {
    private let handler = HostExitHandler(controlPage: IPA(raw: 0x0A10_0000))
    private let el1h: UInt64 = 0x3C5
    private var psci = try! PSCIMediator(cpuMPIDRs: [0, 1], bootCPU: 0, hypervisorEntry: PhysAddr(raw: 0x4008_0000),
                                         hostRAM: virtLayout())
    private var control = ControlRegisterFile()
    private var ops = FakeOperations()
    private var regs = TestRegisters()

    private func esr(_ ec: UInt64, il: Bool = true, iss: UInt64 = 0) -> ExceptionSyndrome {
        ExceptionSyndrome(raw: ec << 26 | (il ? 1 << 25 : 0) | iss)
    }

    private func handle(_ exit: HostExit) -> HostExitOutcome {
        handler.handle(exit, cpu: 0, registers: &regs, psci: &psci, control: &control, operations: &ops)
    }

    private func call(_ ec: UInt64, x0: UInt64, x1: UInt64 = 0, x2: UInt64 = 0, x3: UInt64 = 0,
                               imm: UInt64 = 0, elr: UInt64 = 0x1000) -> HostExitOutcome {
        regs.setX(0, x0); regs.setX(1, x1); regs.setX(2, x2); regs.setX(3, x3)
        return handle(HostExit(syndrome: esr(ec, iss: imm), elr: elr, spsr: el1h))
    }

    func testSMCCCAnsweredCalls() {
        // (EC, X0, X1, imm, ELR, expected X0, resume PC, kind)
        let table: [(UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, HostExitKind)] = [
            (0x16, 0x8000_0000, 0, 0, 0x1000, 0x1_0001, 0x1000, .smcccOther),           // SMCCC_VERSION by HVC
            (0x17, 0x8000_0000, 0, 0, 0x1000, 0x1_0001, 0x1004, .smcccOther),           // by SMC: ELR + 4
            (0x17, 0x8000_0001, 0x8000_8000, 0, 0x1000, UInt64.max, 0x1004, .smcccOther), // WORKAROUND_1 not offered
            (0x17, 0x8000_0001, 0x8000_0001, 0, 0x1000, 0, 0x1004, .smcccOther),
            (0x17, 0x8000_0002, 0, 0, 0x1000, UInt64.max, 0x1004, .smcccOther),
            (0x17, 0xC600_0000, 0, 0, 0x1000, UInt64.max, 0x1004, .smcccOther),          // vendor hypervisor
            (0x17, 0x0400_0003, 0, 0, 0x1000, UInt64.max, 0x1004, .smcccOther),          // yielding call
            (0x17, 0x8401_0000, 0, 0, 0x1000, UInt64.max, 0x1004, .smcccOther),          // reserved bits
            (0x16, 0x8400_0000, 0, 1, 0x1000, UInt64.max, 0x1000, .smcccOther),          // HVC #1
            (0x17, 0x8400_0012, 0, 0, 0x1000, UInt64.max, 0x1004, .psci),                // SYSTEM_RESET2
            (0x17, 0x8000_0000, 0, 0, UInt64.max - 3, 0x1_0001, 0, .smcccOther),         // SMC at the top wraps
        ]
        for (ec, x0, x1, imm, elr, result, pc, kind) in table {
            regs = TestRegisters()
            regs.setX(4, 0x4444)
            let outcome = call(ec, x0: x0, x1: x1, imm: imm, elr: elr)
            XCTAssertEqual(outcome, HostExitOutcome(decision: .resume(pc: pc), kind: kind), "\(x0)")
            XCTAssertEqual(regs.x(0), result, "\(x0)")
            XCTAssertEqual(regs.x(1), x1)
            XCTAssertEqual(regs.x(4), 0x4444)
        }
    }

    func testPSCIThroughTheFirmwareAndItsCompletion() {
        let outcome = call(0x17, x0: 0xC400_0003, x1: 1, x2: 0x4100_0000, x3: 0xAB, elr: 0x2000)
        let expected = FirmwareCall(function: 0xC400_0003, x1: 1, x2: 0x4008_0000, x3: 1, completion: .cpuOn(target: 1))
        XCTAssertEqual(outcome, HostExitOutcome(decision: .callFirmware(expected, resumeAt: 0x2004), kind: .psci))
        handler.completeFirmwareCall(expected, firmwareResult: PSCIReturn.x0(PSCIReturn.alreadyOn),
                                     registers: &regs, psci: &psci)
        XCTAssertEqual(regs.x(0), PSCIReturn.x0(PSCIReturn.alreadyOn))
        XCTAssertEqual(psci.power(of: 1), .off)
        // Upper half of X0 ignored: W0 names the function.
        XCTAssertEqual(call(0x16, x0: 0xFFFF_FFFF_8400_0008).decision, .endRun(.systemOff))
        XCTAssertEqual(call(0x17, x0: 0x8400_0009).decision, .endRun(.systemReset))
        // A refused CPU_ON is answered without the firmware.
        XCTAssertEqual(call(0x17, x0: 0xC400_0003, x1: 1, x2: 0x4000_0000).decision, .resume(pc: 0x1004))
        XCTAssertEqual(regs.x(0), PSCIReturn.x0(PSCIReturn.invalidAddress))
    }

    func testStage2AbortOnHypervisorMemoryInjectsAnExternalAbort() {
        regs.setX(3, 0x33)
        let before = regs
        // str x3, [x1] at IPA 0x4000_1000 from EL1: ISV, SAS=3, SRT=3, SF, WnR, translation fault L3.
        let exit = HostExit(syndrome: esr(0x24, iss: 0x01C3_8047), elr: 0xFFFF_8000_0800_0000, spsr: el1h,
                            far: 0xFFFF_0000_4000_1000, faultIPA: IPA(raw: 0x4000_1000), sctlrEL1: 1 << 23)
        let outcome = handle(exit)
        let injection = ExceptionInjection(.dataAbort(write: true), spsr: el1h, elr: 0xFFFF_8000_0800_0000,
                                           far: 0xFFFF_0000_4000_1000, sctlrEL1: 1 << 23)
        XCTAssertEqual(outcome, HostExitOutcome(decision: .inject(injection, reason: .stage2Refused(IPA(raw: 0x4000_1000))),
                                                kind: .stage2Refused))
        XCTAssertEqual(injection.esr, 0x9600_0050)
        XCTAssertEqual(regs, before)
        XCTAssertEqual(control, ControlRegisterFile())
        // From EL0 (a devmem process), a read, HPFAR not valid: still refused.
        let user = handle(HostExit(syndrome: esr(0x24, iss: 0x07), elr: 0x40_0000, spsr: 0, far: 0x7F00_0000))
        guard case .inject(let i, .stage2Refused(nil)) = user.decision else { return XCTFail("\(user)") }
        XCTAssertEqual(i.esr, 0x9200_0010)
        XCTAssertEqual(i.vectorOffset, 0x400)
        // An instruction fetch from hypervisor memory.
        let fetch = handle(HostExit(syndrome: esr(0x20, iss: 0x07), elr: 0x4000_2000, spsr: el1h,
                                    far: 0x4000_2000, faultIPA: IPA(raw: 0x4000_2000)))
        guard case .inject(let f, .stage2Refused(IPA(raw: 0x4000_2000))) = fetch.decision else { return XCTFail("\(fetch)") }
        XCTAssertEqual(f.esr, 0x8600_0010)
    }

    func testControlPageAccessesAreEmulated() {
        // str x3, [control + 0x08]; str w4, [control + 0x10]; str wzr? no: write COMMAND from x5.
        regs.setX(3, 0x40003)
        regs.setX(4, 0xFFFF_FFFF_0000_0002)
        regs.setX(5, 1)
        let stores: [(UInt64, UInt64)] = [
            (0x08, 0x01C3_8047),       // 64-bit store of X3
            (0x10, 0x0184_0047),       // 32-bit store of W4 (SAS=2, SRT=4, SF=0)
            (0x28, 0x01C5_8047),       // 64-bit store of X5: runs SHARE
        ]
        for (offset, iss) in stores {
            let outcome = handle(HostExit(syndrome: esr(0x24, iss: iss), elr: 0x5000, spsr: el1h,
                                          faultIPA: IPA(raw: 0x0A10_0000 + offset)))
            XCTAssertEqual(outcome, HostExitOutcome(decision: .resume(pc: 0x5004), kind: .controlDevice))
        }
        XCTAssertEqual(control.count, 2)
        XCTAssertEqual(ops.calls, [.share(MFN(raw: 0x40003), 2)])
        // ldr w7, [control + 0x00]: SAS=2, SRT=7, SF=0.
        regs.setX(7, UInt64.max)
        XCTAssertEqual(handle(HostExit(syndrome: esr(0x24, iss: 0x0187_0007), elr: 0x6000, spsr: el1h,
                                       faultIPA: IPA(raw: 0x0A10_0000))).decision, .resume(pc: 0x6004))
        XCTAssertEqual(regs.x(7), 0x4856_4D43)
        // ldr x8, [control + 0x30]: STATUS.
        regs.setX(8, 7)
        _ = handle(HostExit(syndrome: esr(0x24, iss: 0x01C8_8007), elr: 0x6000, spsr: el1h, faultIPA: IPA(raw: 0x0A10_0030)))
        XCTAssertEqual(regs.x(8), 0)
        // A load into XZR is performed and discarded; a store of XZR writes 0 (COMMAND 0: unknown).
        _ = handle(HostExit(syndrome: esr(0x24, iss: 0x01DF_8007), elr: 0x6000, spsr: el1h, faultIPA: IPA(raw: 0x0A10_0000)))
        _ = handle(HostExit(syndrome: esr(0x24, iss: 0x01DF_8047), elr: 0x6000, spsr: el1h, faultIPA: IPA(raw: 0x0A10_0028)))
        XCTAssertEqual(control.status, 0x1_0001)
        XCTAssertEqual(ops.calls.count, 1)
        // A 16-bit T32 store from AArch32 EL0 advances by 2.
        regs.setX(2, 0x40009)
        XCTAssertEqual(handle(HostExit(syndrome: esr(0x24, il: false, iss: 0x0182_0047), elr: 0x8000, spsr: 0x10,
                                       faultIPA: IPA(raw: 0x0A10_0008))).decision, .resume(pc: 0x8002))
        XCTAssertEqual(control.frame, 0x40009)
    }

    func testControlPageMisuseInjectsAndChangesNothing() {
        regs.setX(3, 0x1234)
        let table: [(UInt64, UInt64, ControlAccessError)] = [
            (0x08, 0x0000_0047, .noSyndrome),              // ISV = 0 (e.g. stp)
            (0x08, 0x01C3_8147, .cacheMaintenance),
            (0x08, 0x01C3_80C7, .tableWalk),
            (0x08, 0x0043_8047 | 1 << 24, .unsupportedWidth(2)),
            (0x08, 0x0003_8047 | 1 << 24, .unsupportedWidth(1)),
            (0x0C, 0x0183_0047, .unaligned(0x0C)),
            (0x40, 0x01C3_8047, .outOfRange(0x40)),
            (0xFF8, 0x01C3_8007, .outOfRange(0xFF8)),
            (0x00, 0x01C3_8047, .readOnly(0x00)),
            (0x30, 0x01C3_8047, .readOnly(0x30)),
        ]
        for (offset, iss, expected) in table {
            let beforeRegs = regs
            let beforeControl = control
            let outcome = handle(HostExit(syndrome: esr(0x24, iss: iss), elr: 0x5000, spsr: el1h, far: 0xFFFF_0000_0000_0008,
                                          faultIPA: IPA(raw: 0x0A10_0000 + offset)))
            guard case .inject(let injection, .controlDeviceRefused(let error)) = outcome.decision else {
                XCTFail("\(outcome)"); continue
            }
            XCTAssertEqual(error, expected)
            XCTAssertEqual(outcome.kind, .controlDeviceRefused)
            XCTAssertEqual(injection.returnAddress, 0x5000)
            XCTAssertEqual(injection.far, 0xFFFF_0000_0000_0008)
            XCTAssertEqual(regs, beforeRegs)
            XCTAssertEqual(control, beforeControl)
        }
        XCTAssertTrue(ops.calls.isEmpty)
    }

    func testLoadExtension() {
        // (value, bytes, ISS with SSE/SF, expected register value)
        let sse: UInt32 = 1 << 21
        let sf: UInt32 = 1 << 15
        let table: [(UInt64, Int, UInt32, UInt64)] = [
            (0x8000_0000, 4, sf | sse, 0xFFFF_FFFF_8000_0000),   // ldrsw x
            (0x8000_0000, 4, sf, 0x8000_0000),                   // ldr w into x view
            (0x8000_0000, 4, 0, 0x8000_0000),
            (0x80, 1, sse, 0xFFFF_FF80),                         // ldrsb w: upper half zero
            (0x80, 1, sse | sf, 0xFFFF_FFFF_FFFF_FF80),
            (0x7F, 1, sse | sf, 0x7F),
            (0xFFFF_FFFF_FFFF_FFFF, 8, sse | sf, 0xFFFF_FFFF_FFFF_FFFF),
        ]
        for (value, bytes, iss, expected) in table {
            XCTAssertEqual(HostExitHandler.extend(value, bytes: bytes, DataAbortSyndrome(iss: iss)), expected)
        }
    }

    func testOtherExitClasses() {
        // WFI waits, WFE resumes; both step over the instruction (wrapping).
        XCTAssertEqual(handle(HostExit(syndrome: esr(0x01, iss: 0), elr: 0x3000, spsr: el1h)),
                       HostExitOutcome(decision: .waitForInterrupt(resumeAt: 0x3004), kind: .waitForInterrupt))
        XCTAssertEqual(handle(HostExit(syndrome: esr(0x01, iss: 1), elr: UInt64.max - 3, spsr: el1h)).decision,
                       .resume(pc: 0))
        // Classes the host may not cause: undefined instruction at its own vector.
        for ec: UInt64 in [0x00, 0x03, 0x07, 0x0E, 0x15, 0x18, 0x22, 0x26, 0x2C, 0x30, 0x3C, 0x3F] {
            let before = regs
            let outcome = handle(HostExit(syndrome: esr(ec, iss: 0x1234), elr: 0x3000, spsr: el1h))
            let injection = ExceptionInjection(.undefinedInstruction, spsr: el1h, elr: 0x3000, far: 0, sctlrEL1: 0)
            XCTAssertEqual(outcome, HostExitOutcome(decision: .inject(injection, reason: .undefined(exceptionClass: UInt8(ec))),
                                                    kind: .undefined), "EC \(ec)")
            XCTAssertEqual(regs, before)
        }
        // SError and EL2's own aborts end the run.
        XCTAssertEqual(handle(HostExit(syndrome: esr(0x2F), elr: 0, spsr: el1h)).decision,
                       .fatal(.serror(syndrome: 0xBE00_0000)))
        XCTAssertEqual(handle(HostExit(syndrome: esr(0x25), elr: 0, spsr: el1h)).decision,
                       .fatal(.hypervisorException(syndrome: 0x9600_0000)))
    }

    func testCountsByKind() {
        var counts = HostExitCounts()
        counts.record(.psci)
        counts.record(.psci)
        counts.record(.fatal)
        XCTAssertEqual(counts[.psci], 2)
        XCTAssertEqual(counts[.fatal], 1)
        XCTAssertEqual(counts[.undefined], 0)
        XCTAssertEqual(HostExitKind.count, 8)
        XCTAssertNil(HostExitKind(rawValue: HostExitKind.count))
        XCTAssertNotNil(HostExitKind(rawValue: HostExitKind.count - 1))
    }

    func testRandomExitsNeverTrapAndRefusalsChangeNothing() {
        var rng = SplitMix64(seed: 0x10_2026)
        for step in 0..<20_000 {
            let ec = rng.next() % 0x40
            let iss = rng.next() & 0x1FF_FFFF
            let spsr = [el1h, 0x3C4, 0, 0x10][Int(rng.next() % 4)]
            let elr = rng.next() % 3 == 0 ? UInt64.max - (rng.next() % 8) : rng.next()
            let ipa: IPA? = rng.next() % 2 == 0 ? IPA(raw: 0x0A10_0000 + rng.next() % 0x1000) : IPA(raw: (rng.next() >> 12) << 12)
            for n in 0..<4 { regs.setX(n, rng.next() % 2 == 0 ? rng.next() : 0x8400_0000 | rng.next() % 0x20) }
            let beforeRegs = regs
            let beforeControl = control
            let outcome = handle(HostExit(syndrome: esr(ec, il: rng.next() % 2 == 0, iss: iss), elr: elr, spsr: spsr,
                                          far: rng.next(), faultIPA: ipa, sctlrEL1: rng.next()))
            switch outcome.decision {
            case .inject(let injection, _):
                XCTAssertEqual(regs, beforeRegs, "step \(step)")
                XCTAssertEqual(control, beforeControl, "step \(step)")
                XCTAssertEqual(injection.returnAddress, elr)
                XCTAssertTrue([0x000, 0x200, 0x400, 0x600].contains(injection.vectorOffset))
                XCTAssertEqual(injection.newPSTATE & 0x3FF, 0x3C5)
            case .callFirmware(let call, _):
                // Nothing reaches the firmware with the host's entry point.
                if call.function & 0xFFFF == 0x0003 || call.function & 0xFFFF == 0x0001 {
                    XCTAssertEqual(call.x2, 0x4008_0000, "step \(step)")
                }
                _ = psci.complete(call, firmwareResult: rng.next() % 2 == 0 ? 0 : PSCIReturn.x0(PSCIReturn.denied))
            case .resume, .waitForInterrupt, .endRun, .fatal:
                break
            }
            // Every CPU the mediator thinks is starting has a request to start from.
            for cpu in 0..<psci.cpuCount where psci.power(of: cpu) == .onPending {
                XCTAssertNotNil(psci.bootRequest(of: cpu))
            }
        }
    }
}
