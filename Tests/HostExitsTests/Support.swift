import AArch64
import HostFakes
import Ownership
import Platform
import Translation
@testable import HostExits

/// The host's X0..X30 in an array.
struct TestRegisters: HostRegisterFile, Equatable {
    var values = [UInt64](repeating: 0, count: 31)
    func x(_ n: Int) -> UInt64 { values[n] }
    mutating func setX(_ n: Int, _ value: UInt64) { values[n] = value }
}

/// Records every operation and answers with a scripted error, if any.
struct FakeOperations: HostPageOperations {
    enum Call: Equatable {
        case share(MFN, UInt64)
        case unshare(MFN, UInt64)
        case donateToHypervisor(MFN)
        case reclaimFromHypervisor(MFN)
        case donateToGuest(MFN, DomainID, GFN)
        case reclaimFromGuest(DomainID, GFN)
    }
    var calls: [Call] = []
    var failure: OwnershipError?

    mutating func perform(_ call: Call) throws(OwnershipError) {
        if let failure { throw failure }
        calls.append(call)
    }
    mutating func shareForDMA(_ first: MFN, count: UInt64) throws(OwnershipError) { try perform(.share(first, count)) }
    mutating func unshareForDMA(_ first: MFN, count: UInt64) throws(OwnershipError) { try perform(.unshare(first, count)) }
    mutating func donateToHypervisor(_ frame: MFN) throws(OwnershipError) { try perform(.donateToHypervisor(frame)) }
    mutating func reclaimFromHypervisor(_ frame: MFN) throws(OwnershipError) { try perform(.reclaimFromHypervisor(frame)) }
    mutating func donateToGuest(_ frame: MFN, domain: DomainID, at gfn: GFN) throws(OwnershipError) {
        try perform(.donateToGuest(frame, domain, gfn))
    }
    mutating func reclaimFromGuest(_ domain: DomainID, at gfn: GFN) throws(OwnershipError) {
        try perform(.reclaimFromGuest(domain, gfn))
    }
}

struct NullCache: CacheMaintenance {
    mutating func clean(_ address: PhysAddr, bytes: UInt64) {}
    mutating func cleanAndInvalidate(_ address: PhysAddr, bytes: UInt64) {}
    mutating func synchronize() {}
}

enum HostExitsTestEnvironment: P2MEnvironment {
    typealias Memory = SparseMemory
    typealias Pool = FreeListPool<SparseMemory>
    typealias TLB = RecordingTLB
    typealias IOMMU = RecordingIOMMU
    typealias Listener = FrameEntryListener
}
typealias TestP2M = P2M<HostExitsTestEnvironment>

/// The host operations over the real Ownership module, as the board conforms it.
struct OwnershipOperations: HostPageOperations, ~Copyable {
    var ownership: PageOwnership<NullCache, TestP2M>

    init(banks: [MemoryBank]) throws {
        ownership = try PageOwnership(banks: banks, cache: NullCache())
    }
    mutating func shareForDMA(_ first: MFN, count: UInt64) throws(OwnershipError) {
        try ownership.hostShareDMA(first.address, bytes: count << PageSize.shift4K, isRAM: true)
    }
    mutating func unshareForDMA(_ first: MFN, count: UInt64) throws(OwnershipError) {
        try ownership.hostUnshareDMA(first.address, bytes: count << PageSize.shift4K)
    }
    mutating func donateToHypervisor(_ frame: MFN) throws(OwnershipError) { try ownership.hostDonateToHypervisor(frame) }
    mutating func reclaimFromHypervisor(_ frame: MFN) throws(OwnershipError) { try ownership.hypervisorDonateToHost(frame) }
    mutating func donateToGuest(_ frame: MFN, domain: DomainID, at gfn: GFN) throws(OwnershipError) {
        try ownership.hostDonateToGuest(frame, to: domain, at: gfn)
    }
    mutating func reclaimFromGuest(_ domain: DomainID, at gfn: GFN) throws(OwnershipError) {
        try ownership.reclaim(domain, gfn: gfn)
    }
}

func range(_ base: UInt64, _ size: UInt64) -> MemoryRange { MemoryRange(base: PhysAddr(raw: base), size: size)! }

/// QEMU virt with 1 GiB: RAM at 0x4000_0000, the hypervisor's first 4 MiB excluded.
func virtLayout() -> HostStage2Layout {
    try! HostStage2Layout(ram: [range(0x4000_0000, 0x4000_0000)], devices: [range(0, 0x4000_0000)],
                          hypervisorOwned: [range(0x4000_0000, 0x40_0000)],
                          neverMapped: [range(0x0905_0000, 0x2_0000), range(0x0A10_0000, 0x1000)], ipaLimit: 1 << 40)
}
