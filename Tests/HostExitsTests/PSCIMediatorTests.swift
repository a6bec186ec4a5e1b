import AArch64
import Platform
import XCTest
@testable import HostExits

final class PSCIMediatorTests: XCTestCase {
    private let entry = PhysAddr(raw: 0x4008_0000)
    private func mediator(_ mpidrs: [UInt64] = [0, 1, 0x100, 0x1_0000_0000], boot: Int = 0) -> PSCIMediator {
        try! PSCIMediator(cpuMPIDRs: mpidrs, bootCPU: boot, hypervisorEntry: entry, hostRAM: virtLayout())
    }

    /// Everything observable, to prove a refused call changed nothing.
    private func snapshot(_ m: PSCIMediator) -> [String] {
        (0..<m.cpuCount).map { "\(m.power(of: $0)!) \(String(describing: m.bootRequest(of: $0)))" }
    }

    func testSetupErrors() {
        let table: [([UInt64], Int, PSCISetupError)] = [
            ([], 0, .noCPUs),
            (Array(0..<9), 0, .tooManyCPUs(capacity: 8)),
            ([0, 1, 0], 0, .duplicateMPIDR(0)),
            ([0, 0x8000_0000], 0, .malformedMPIDR(0x8000_0000)),
            ([0, 1 << 40], 0, .malformedMPIDR(1 << 40)),
            ([0, 1], 2, .bootCPUOutOfRange(2)),
            ([0, 1], -1, .bootCPUOutOfRange(-1)),
        ]
        for (mpidrs, boot, expected) in table {
            XCTAssertThrowsError(try PSCIMediator(cpuMPIDRs: mpidrs, bootCPU: boot, hypervisorEntry: entry,
                                                  hostRAM: virtLayout())) {
                XCTAssertEqual($0 as? PSCISetupError, expected)
            }
        }
        let m = mediator(boot: 1)
        XCTAssertEqual(m.cpuCount, 4)
        XCTAssertEqual(m.power(of: 1), .on)
        XCTAssertEqual(m.power(of: 0), .off)
        XCTAssertNil(m.power(of: 4))
        XCTAssertEqual(m.index(ofMPIDR: 0x1_0000_0000), 3)
        XCTAssertEqual(m.mpidr(of: 2), 0x100)
        XCTAssertNil(m.index(ofMPIDR: 2))
    }

    func testCPUOnStartsTheTargetThroughTheHypervisorsEntry() {
        var m = mediator()
        let decision = m.decide(.cpuOn, smc64: true, x1: 0x100, x2: 0x4100_0000, x3: 0xC0FFEE, cpu: 0)
        XCTAssertEqual(decision, .forward(FirmwareCall(function: 0xC400_0003, x1: 0x100, x2: 0x4008_0000, x3: 2,
                                                       completion: .cpuOn(target: 2))))
        XCTAssertEqual(m.power(of: 2), .onPending)
        // A second CPU_ON while the first is with the firmware.
        XCTAssertEqual(m.decide(.cpuOn, smc64: true, x1: 0x100, x2: 0x4100_0000, x3: 0, cpu: 1),
                       .answer(PSCIReturn.onPending))
        // The CPU arrives at the entry (possibly before the caller's SMC returns).
        XCTAssertEqual(m.takeBootRequest(cpu: 2), .init(entry: PhysAddr(raw: 0x4100_0000), context: 0xC0FFEE))
        XCTAssertEqual(m.power(of: 2), .on)
        XCTAssertNil(m.takeBootRequest(cpu: 2))
        if case .forward(let call) = decision {
            XCTAssertEqual(m.complete(call, firmwareResult: 0), 0)
        }
        XCTAssertEqual(m.power(of: 2), .on)
        XCTAssertEqual(m.decide(.cpuOn, smc64: true, x1: 0x100, x2: 0x4100_0000, x3: 0, cpu: 1),
                       .answer(PSCIReturn.alreadyOn))
    }

    func testSMC32CPUOnUsesTheLowHalvesOnly() {
        var m = mediator()
        let decision = m.decide(.cpuOn, smc64: false, x1: 0xFFFF_FFFF_0000_0001, x2: 0xDEAD_0000_4100_0000,
                                x3: 0xFFFF_FFFF_0000_0007, cpu: 0)
        XCTAssertEqual(decision, .forward(FirmwareCall(function: 0xC400_0003, x1: 1, x2: 0x4008_0000, x3: 1,
                                                       completion: .cpuOn(target: 1))))
        XCTAssertEqual(m.bootRequest(of: 1), .init(entry: PhysAddr(raw: 0x4100_0000), context: 7))
    }

    func testHostileCPUOnArgumentsChangeNothing() {
        var m = mediator()
        let table: [(UInt64, UInt64, Int64)] = [
            (5, 0x4100_0000, PSCIReturn.invalidParameters),          // not a listed CPU
            (1 << 40 | 1, 0x4100_0000, PSCIReturn.invalidParameters),  // bits outside the affinity fields
            (0x8000_0001, 0x4100_0000, PSCIReturn.invalidParameters),
            (1, 0x4000_1000, PSCIReturn.invalidAddress),               // the hypervisor's own memory
            (1, 0x4100_0002, PSCIReturn.invalidAddress),               // not word aligned
            (1, 0x0900_0000, PSCIReturn.invalidAddress),               // device memory
            (1, 0x8000_0000, PSCIReturn.invalidAddress),               // past the end of RAM
            (1, UInt64.max - 3, PSCIReturn.invalidAddress),
            (0, 0x4100_0000, PSCIReturn.alreadyOn),                    // the boot CPU
        ]
        for (target, entryPoint, expected) in table {
            let before = snapshot(m)
            XCTAssertEqual(m.decide(.cpuOn, smc64: true, x1: target, x2: entryPoint, x3: 9, cpu: 0), .answer(expected),
                           "\(target) \(entryPoint)")
            XCTAssertEqual(snapshot(m), before)
        }
    }

    func testFailedCPUOnIsUndone() {
        var m = mediator()
        guard case .forward(let call) = m.decide(.cpuOn, smc64: true, x1: 1, x2: 0x4100_0000, x3: 0, cpu: 0) else {
            return XCTFail()
        }
        XCTAssertEqual(m.complete(call, firmwareResult: PSCIReturn.x0(PSCIReturn.internalFailure)),
                       PSCIReturn.x0(PSCIReturn.internalFailure))
        XCTAssertEqual(m.power(of: 1), .off)
        XCTAssertNil(m.bootRequest(of: 1))
        XCTAssertNil(m.takeBootRequest(cpu: 1))
        // And it may be tried again.
        XCTAssertNotEqual(m.decide(.cpuOn, smc64: true, x1: 1, x2: 0x4100_0000, x3: 0, cpu: 0), .answer(PSCIReturn.onPending))
    }

    func testCPUOffAndSuspend() {
        var m = mediator()
        XCTAssertEqual(m.decide(.cpuOff, smc64: false, x1: 0, x2: 0, x3: 0, cpu: 0),
                       .forward(FirmwareCall(function: 0x8400_0002, x1: 0, x2: 0, x3: 0, completion: .cpuOff(cpu: 0))))
        XCTAssertEqual(m.power(of: 0), .off)
        _ = m.complete(FirmwareCall(function: 0x8400_0002, x1: 0, x2: 0, x3: 0, completion: .cpuOff(cpu: 0)),
                       firmwareResult: PSCIReturn.x0(PSCIReturn.denied))
        XCTAssertEqual(m.power(of: 0), .on)

        let suspend = m.decide(.cpuSuspend, smc64: true, x1: 0x1_0000, x2: 0x4100_0000, x3: 0x55, cpu: 0)
        XCTAssertEqual(suspend, .forward(FirmwareCall(function: 0xC400_0001, x1: 0x1_0000, x2: 0x4008_0000, x3: 0,
                                                      completion: .cpuSuspend(cpu: 0))))
        XCTAssertEqual(m.bootRequest(of: 0), .init(entry: PhysAddr(raw: 0x4100_0000), context: 0x55))
        if case .forward(let call) = suspend { _ = m.complete(call, firmwareResult: 0) }
        XCTAssertNil(m.bootRequest(of: 0))
        XCTAssertEqual(m.power(of: 0), .on)

        let before = snapshot(m)
        XCTAssertEqual(m.decide(.cpuSuspend, smc64: true, x1: 0, x2: 0x4000_0000, x3: 0, cpu: 0),
                       .answer(PSCIReturn.invalidAddress))
        XCTAssertEqual(m.decide(.cpuSuspend, smc64: true, x1: 0, x2: 0x4100_0000, x3: 0, cpu: 9),
                       .answer(PSCIReturn.denied))
        XCTAssertEqual(m.decide(.cpuOff, smc64: false, x1: 0, x2: 0, x3: 0, cpu: -1), .answer(PSCIReturn.denied))
        XCTAssertEqual(snapshot(m), before)
    }

    func testForwardedAnsweredAndRefusedCalls() {
        var m = mediator()
        let forwarded: [(PSCIFunction, Bool, UInt64, UInt64, FirmwareCall)] = [
            (.version, false, 7, 7, FirmwareCall(function: 0x8400_0000, x1: 0, x2: 0, x3: 0, completion: .none)),
            (.migrateInfoType, false, 7, 7, FirmwareCall(function: 0x8400_0006, x1: 0, x2: 0, x3: 0, completion: .none)),
            (.affinityInfo, true, 0x100, 0, FirmwareCall(function: 0xC400_0004, x1: 0x100, x2: 0, x3: 0, completion: .none)),
            (.affinityInfo, false, 0xFFFF_FFFF_0000_0001, 1,
             FirmwareCall(function: 0x8400_0004, x1: 1, x2: 1, x3: 0, completion: .none)),
        ]
        for (function, smc64, x1, x2, call) in forwarded {
            XCTAssertEqual(m.decide(function, smc64: smc64, x1: x1, x2: x2, x3: 0, cpu: 0), .forward(call))
        }
        XCTAssertEqual(m.decide(.systemOff, smc64: false, x1: 0, x2: 0, x3: 0, cpu: 0), .endRun(.systemOff))
        XCTAssertEqual(m.decide(.systemReset, smc64: false, x1: 0, x2: 0, x3: 0, cpu: 0), .endRun(.systemReset))
        let before = snapshot(m)
        let refused: [(PSCIFunction, Bool)] = [
            (.systemOff, true), (.version, true), (.cpuOff, true), (.systemReset2, false), (.systemReset2, true),
            (.migrate, false), (.migrateInfoUpCPU, true), (.systemSuspend, true), (.memProtect, false),
            (.cpuFreeze, false), (.other(0x1F), false), (.other(0x1F), true),
        ]
        for (function, smc64) in refused {
            XCTAssertEqual(m.decide(function, smc64: smc64, x1: 1, x2: 0x4100_0000, x3: 0, cpu: 0),
                           .answer(PSCIReturn.notSupported), "\(function) \(smc64)")
        }
        XCTAssertEqual(snapshot(m), before)
    }

    func testFeatures() {
        var m = mediator()
        let forward = { (id: UInt64) in
            PSCIDecision.forward(FirmwareCall(function: 0x8400_000A, x1: id, x2: 0, x3: 0, completion: .none))
        }
        let table: [(UInt64, PSCIDecision)] = [
            (0xC400_0003, forward(0xC400_0003)),
            (0x8400_0001, forward(0x8400_0001)),
            (0x8400_0008, forward(0x8400_0008)),
            (0x8400_000A, forward(0x8400_000A)),
            (0x8000_0000, .answer(PSCIReturn.success)),            // SMCCC_VERSION
            (0xC400_000E, .answer(PSCIReturn.notSupported)),       // SYSTEM_SUSPEND
            (0x8400_0013, .answer(PSCIReturn.notSupported)),       // MEM_PROTECT
            (0xC400_0000, .answer(PSCIReturn.notSupported)),       // no SMC64 PSCI_VERSION
            (0xC600_0000, .answer(PSCIReturn.notSupported)),       // vendor hypervisor service
            (0x0400_0003, .answer(PSCIReturn.notSupported)),       // yielding call
            (0x8401_0003, .answer(PSCIReturn.notSupported)),       // reserved bits
            (0xFFFF_FFFF_8400_0003, forward(0x8400_0003)),         // SMC32 FEATURES reads W1 only
        ]
        for (queried, expected) in table {
            XCTAssertEqual(m.decide(.features, smc64: false, x1: queried, x2: 0, x3: 0, cpu: 0), expected, "\(queried)")
        }
    }
}
