import XCTest
import Foundation
import Synchronization
import AArch64
import Translation
import HostFakes
@testable import Ownership

/// Cache maintenance that only counts, with one atomic add, so CPUs may call
/// it at once (the recording fake appends to an array). The counts are not
/// checked here: every domain in these tests snoops, so nothing is cleaned.
struct ConcurrentCache: CacheMaintenance {
    mutating func clean(_ address: PhysAddr, bytes: UInt64) {}
    mutating func cleanAndInvalidate(_ address: PhysAddr, bytes: UInt64) {}
    mutating func synchronize() {}
}

typealias StressOwnership = PageOwnership<ConcurrentCache, TestP2M>

/// Runs `body(n)` for `n` in `0..<count`, each on a thread of its own; the
/// threads wait at a barrier until all of them exist, so their loops
/// overlap, and are joined before this returns.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Barrier: Sendable { let arrived = Atomic<Int>(0) }
    let barrier = Barrier()
    let done = DispatchGroup()
    for n in 0..<count {
        done.enter()
        Thread {
            barrier.arrived.add(1, ordering: .relaxed)
            while barrier.arrived.load(ordering: .relaxed) < count {}
            body(n)
            done.leave()
        }.start()
    }
    done.wait()
}

/// Memory every thread reaches, as every CPU reaches the hypervisor's: the
/// threads share exactly what CPUs would, which is what these tests are about.
struct Shared<Pointee: ~Copyable>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Pointee>
    init(_ pointer: UnsafeMutablePointer<Pointee>) { self.pointer = pointer }
}

/// The page-state operations run by several threads at once on one
/// `PageOwnership`, as CPUs run them at EL2: each thread takes only the locks
/// the operations take themselves (the domain page lock, each domain's P2M
/// lock) and nothing around them.
final class ConcurrencyStressTests: XCTestCase {
    static let sharedFrames = 6
    static let guests: [DomainID] = [DomainID(1), DomainID(2)]

    /// The GFN at which guest `d` maps frame `i` of the shared set: fixed, so
    /// that a donation and a lend of the same frame to one guest collide in
    /// the P2M as well as in the frame table.
    static func gfn(_ i: Int) -> GFN { GFN(raw: 0x100 + UInt64(i)) }
    static func frame(_ i: Int) -> MFN { bank0.adding(UInt64(i)) }

    /// One ownership state with two guests whose P2Ms each have their own
    /// table RAM and event log (each touched only under that P2M's lock).
    static func makeOwnership() -> UnsafeMutablePointer<StressOwnership> {
        let o = UnsafeMutablePointer<StressOwnership>.allocate(capacity: 1)
        o.initialize(to: try! PageOwnership(banks: testBanks, cache: ConcurrentCache()))
        var nextPoolFrame = MFN(raw: 0x10_0000)
        for (n, id) in guests.enumerated() {
            let memory = SparseMemory(ram: SparseRAM())
            let log = EventLog()
            let pool = FreeListPool(memory: memory, first: nextPoolFrame, count: 16)
            nextPoolFrame = nextPoolFrame.adding(16)
            let p2m = try! TestP2M(configuration: P2MConfiguration(vmid: UInt16(n + 2), ipaBits: 39, paRange: .bits40,
                                                                  vmidWidth: .bits8),
                                   memory: memory, pool: pool, tlb: RecordingTLB(log: log),
                                   iommu: RecordingIOMMU(log: log), listener: o.pointee.entryListener,
                                   observer: NoChangeObserver())
            try! o.pointee.createDomain(DomainConfig(id: id), p2m: p2m)
        }
        return o
    }

    static func release(_ o: UnsafeMutablePointer<StressOwnership>) {
        o.deinitialize(count: 1)
        o.deallocate()
    }

    /// What one thread's successful calls did to each shared frame: DMA
    /// shares, donations to the hypervisor, donations to and lends to each
    /// guest, each counted up on success and down on its inverse's success.
    struct Tally {
        var dmaShares = [Int](repeating: 0, count: sharedFrames)
        var hypervisor = [Int](repeating: 0, count: sharedFrames)
        var donated = [[Int]](repeating: [Int](repeating: 0, count: sharedFrames), count: guests.count)
        var lent = [[Int]](repeating: [Int](repeating: 0, count: sharedFrames), count: guests.count)
        var succeeded = 0

        mutating func add(_ other: Tally) {
            for i in 0..<sharedFrames {
                dmaShares[i] += other.dmaShares[i]
                hypervisor[i] += other.hypervisor[i]
                for g in 0..<guests.count {
                    donated[g][i] += other.donated[g][i]
                    lent[g][i] += other.lent[g][i]
                }
            }
            succeeded += other.succeeded
        }
    }

    /// One random operation on the shared frames; returns whether it succeeded.
    static func step(_ o: UnsafeMutablePointer<StressOwnership>, _ rng: inout SplitMix64, _ t: inout Tally) {
        let i = Int(rng.next() % UInt64(sharedFrames))
        let g = Int(rng.next() % UInt64(guests.count))
        let d = guests[g]
        let f = frame(i)
        do throws(OwnershipError) {
            switch rng.next() % 8 {
            case 0:
                // One or two frames: a two-frame share that fails at its
                // second frame rolls the first back.
                let count = i + 1 < sharedFrames && rng.next() & 1 == 0 ? 2 : 1
                try o.pointee.hostShareDMA(f.address, bytes: UInt64(count) << PageSize.shift4K, isRAM: true)
                for k in 0..<count { t.dmaShares[i + k] += 1 }
            case 1:
                let count = i + 1 < sharedFrames && rng.next() & 1 == 0 ? 2 : 1
                try o.pointee.hostUnshareDMA(f.address, bytes: UInt64(count) << PageSize.shift4K)
                for k in 0..<count { t.dmaShares[i + k] -= 1 }
            case 2:
                try o.pointee.hostDonateToHypervisor(f)
                t.hypervisor[i] += 1
            case 3:
                try o.pointee.hypervisorDonateToHost(f)
                t.hypervisor[i] -= 1
            case 4:
                try o.pointee.hostDonateToGuest(f, to: d, at: gfn(i))
                t.donated[g][i] += 1
            case 5:
                // reclaim takes back whatever the guest's own RAM at the GFN is;
                // only frame `i` is ever donated there.
                try o.pointee.reclaim(d, gfn: gfn(i))
                t.donated[g][i] -= 1
            case 6:
                try o.pointee.hostShareWithGuest(f, with: d, at: gfn(i))
                t.lent[g][i] += 1
            default:
                try o.pointee.hostUnshareWithGuest(f, with: d, at: gfn(i))
                t.lent[g][i] -= 1
            }
            t.succeeded += 1
        } catch {
            // Refusals are the point of the contention; each one changed
            // nothing, which the invariants below check as a whole.
        }
    }

    /// Runs `threads` threads of `steps` random operations each and returns
    /// the sum of their tallies.
    static func run(_ o: UnsafeMutablePointer<StressOwnership>, threads: Int, steps: Int, seed: UInt64) -> Tally {
        let tallies = UnsafeMutablePointer<Tally>.allocate(capacity: threads)
        tallies.initialize(repeating: Tally(), count: threads)
        defer {
            tallies.deinitialize(count: threads)
            tallies.deallocate()
        }
        let shared = Shared(o), results = Shared(tallies)
        onThreads(threads) { n in
            var rng = SplitMix64(seed: seed &+ UInt64(n) &* 0x1_0000_0001)
            var t = Tally()
            for _ in 0..<steps { step(shared.pointer, &rng, &t) }
            results.pointer[n] = t
        }
        var total = Tally()
        for n in 0..<threads { total.add(tallies[n]) }
        return total
    }

    /// The invariants after the threads joined: each frame's share count is
    /// the successful shares minus the successful unshares; each frame is in
    /// exactly the one state the successful calls leave it in (never both
    /// DMA-shared and donated or lent, never given away twice or taken back
    /// twice, never lost); every guest P2M maps exactly the frames donated or
    /// lent to it; no lock is left held.
    static func checkInvariants(_ o: UnsafeMutablePointer<StressOwnership>, _ t: Tally,
                                file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(o.pointee.isPageLockHeld, "the page lock is still held", file: file, line: line)
        for i in 0..<sharedFrames {
            let f = frame(i)
            guard let s = o.pointee.state(of: f) else { return XCTFail("frame \(i) is not RAM", file: file, line: line) }
            XCTAssertEqual(Int(s.dmaShares), t.dmaShares[i], "frame \(i): DMA shares", file: file, line: line)
            var holders = t.dmaShares[i] > 0 ? 1 : 0
            for count in [t.hypervisor[i]] + t.donated.map({ $0[i] }) + t.lent.map({ $0[i] }) {
                XCTAssertTrue(count == 0 || count == 1,
                              "frame \(i): a net count of \(count) (given away twice, or taken back twice)",
                              file: file, line: line)
                holders += count
            }
            XCTAssertLessThanOrEqual(holders, 1, "frame \(i) is in two states at once: \(s)", file: file, line: line)
            if t.dmaShares[i] > 0 {
                XCTAssertEqual(s, FrameState(owner: .host, hostState: .sharedOwned, borrower: .iommu,
                                             dmaShares: UInt16(t.dmaShares[i])), "frame \(i)", file: file, line: line)
            } else if t.hypervisor[i] == 1 {
                XCTAssertEqual(s, FrameState(owner: .hypervisor, hostState: .noPage), "frame \(i)", file: file, line: line)
            } else if let g = t.donated.firstIndex(where: { $0[i] == 1 }) {
                XCTAssertEqual(s, FrameState(owner: .guest(guests[g]), hostState: .noPage, references: 1,
                                             isAllocated: true), "frame \(i)", file: file, line: line)
            } else if let g = t.lent.firstIndex(where: { $0[i] == 1 }) {
                XCTAssertEqual(s, FrameState(owner: .host, hostState: .sharedOwned, borrower: .guest(guests[g])),
                               "frame \(i)", file: file, line: line)
            } else {
                XCTAssertEqual(s, .hostOwned, "frame \(i) was not returned to the host whole", file: file, line: line)
            }
            for (g, d) in guests.enumerated() {
                let mapped = o.pointee.withDomain(d) { (dom: borrowing GuestDomain<TestP2M>) in
                    dom.p2m.translate(gfn(i))
                } ?? nil
                if t.donated[g][i] == 1 || t.lent[g][i] == 1 {
                    XCTAssertEqual(mapped?.mfn, f, "guest \(g + 1) GFN of frame \(i)", file: file, line: line)
                    XCTAssertEqual(mapped?.type, .ramRW, "guest \(g + 1) GFN of frame \(i)", file: file, line: line)
                } else {
                    XCTAssertNil(mapped?.mfn, "guest \(g + 1) still maps frame \(i)'s GFN", file: file, line: line)
                }
            }
        }
        for d in guests {
            let state = o.pointee.withDomain(d) { (dom: borrowing GuestDomain<TestP2M>) in
                (dom.lock.isLocked, dom.owesFlush)
            }
            XCTAssertEqual(state?.0, false, "\(d)'s P2M lock is still held", file: file, line: line)
            XCTAssertEqual(state?.1, false, "\(d) owes a flush", file: file, line: line)
        }
    }

    /// Four threads on six frames shared between the host's DMA, the
    /// hypervisor and two guests.
    func testRandomTransitionsFromFourThreadsKeepEveryInvariant() {
        let o = Self.makeOwnership()
        defer { Self.release(o) }
        let steps = 10_000
        let t = Self.run(o, threads: 4, steps: steps, seed: 0x5EED_0011)
        // The operations contend for real: many succeed and many are refused.
        XCTAssertGreaterThan(t.succeeded, steps / 2)
        XCTAssertLessThan(t.succeeded, 4 * steps)
        Self.checkInvariants(o, t)
    }

    /// Only the DMA count, hammered: every thread shares and unshares one
    /// frame, so two unshares of one remaining share meet as often as the
    /// machine lets them.
    func testConcurrentSharesAndUnsharesOfOneFrameBalance() {
        let o = Self.makeOwnership()
        defer { Self.release(o) }
        let f = Self.frame(0)
        let threads = 4, rounds = 10_000
        let balances = UnsafeMutablePointer<Int>.allocate(capacity: threads)
        balances.initialize(repeating: 0, count: threads)
        defer { balances.deallocate() }
        let shared = Shared(o), results = Shared(balances)
        onThreads(threads) { n in
            let o = shared.pointer
            var balance = 0
            for _ in 0..<rounds {
                if (try? o.pointee.hostShareDMA(f.address, bytes: PageSize.bytes4K, isRAM: true)) != nil { balance += 1 }
                // Twice: the second meets another thread's unshare of the last share.
                if (try? o.pointee.hostUnshareDMA(f.address, bytes: PageSize.bytes4K)) != nil { balance -= 1 }
                if (try? o.pointee.hostUnshareDMA(f.address, bytes: PageSize.bytes4K)) != nil { balance -= 1 }
            }
            results.pointer[n] = balance
        }
        var t = Tally()
        for n in 0..<threads { t.dmaShares[0] += balances[n] }
        Self.checkInvariants(o, t)
    }

    /// The per-frame unshare alone, with no page lock around it (shares take
    /// it as usual): the check and the update are one compare-exchange, so of two
    /// unshares that meet at a count of one exactly one succeeds, the count
    /// never underflows, and it ends as the successes say.
    func testUnsharesOfOneFrameWithoutThePageLockNeverUnderflow() {
        let o = Self.makeOwnership()
        defer { Self.release(o) }
        let f = Self.frame(3)
        let threads = 4, rounds = 10_000
        let balances = UnsafeMutablePointer<Int>.allocate(capacity: threads)
        balances.initialize(repeating: 0, count: threads)
        defer { balances.deallocate() }
        let shared = Shared(o), results = Shared(balances)
        onThreads(threads) { n in
            let o = shared.pointer
            var balance = 0
            for _ in 0..<rounds {
                if (try? o.pointee.hostShareDMA(f.address, bytes: PageSize.bytes4K, isRAM: true)) != nil { balance += 1 }
                // Twice: the second meets another thread's unshare of the last share.
                if (try? o.pointee.unshareOneForDMA(f)) != nil { balance -= 1 }
                if (try? o.pointee.unshareOneForDMA(f)) != nil { balance -= 1 }
            }
            results.pointer[n] = balance
        }
        let expected = (0..<threads).reduce(0) { $0 + balances[$1] }
        XCTAssertGreaterThanOrEqual(expected, 0)
        XCTAssertEqual(Int(o.pointee.state(of: f)?.dmaShares ?? 0), expected)
    }
}
