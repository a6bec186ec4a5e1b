import XCTest
import AArch64
import Translation
import HostFakes
@testable import Ownership

/// A plain reference model of the ownership rules (dictionaries, no atomics,
/// no P2M), and a harness that runs the same operation on the model and on
/// the real `PageOwnership` + `P2M`, then compares them and checks the
/// numbered invariants (see `Harness.check`) after every step.

struct MFrame: Equatable {
    var owner: PageOwner
    var hostState: HostPageState
    var borrower: Borrower = .none
    var dma = 0
    var refs = 0
    var allocated = false
    var xenheap = false
    var xenGFN: GFN? = nil
    var flag = false
    static let hostOwned = MFrame(owner: .host, hostState: .owned)
}

struct MEntry: Equatable {
    var mfn: MFN
    var type: P2MType
}

struct MIOMMU: Equatable {
    var count: Int
    var writable: Int
}

struct MMove {
    var domain: DomainID
    var idx: GFN
    var gfn: GFN
    var remaining: Int
    var held: [MFN] = []
}

enum Op: Equatable {
    /// `pages` frames from `first`; `isRAM` is the host's claim, true or not.
    case shareDMA(MFN, pages: UInt64, isRAM: Bool)
    case unshareDMA(MFN, pages: UInt64)
    /// `times` DMA shares of frame `i`, one host call each (drives the 16-bit
    /// share count up to its limit).
    case pumpDMA(Int, times: Int)
    /// A host device address space attached (vfio's attach_group), whose
    /// devices snoop the CPU caches or not (seed 003).
    case attachDMA(UInt16, coherent: Bool)
    case detachDMA(UInt16)
    case donate(Int, DomainID, GFN)
    case reclaim(DomainID, GFN)
    case donateHyp(Int)
    case returnHyp(Int)
    case shareHyp(Int)
    case unshareHyp(Int)
    case shareGuest(Int, DomainID, GFN)
    case unshareGuest(Int, DomainID, GFN)
    case guestShareHost(DomainID, GFN)
    case guestUnshareHost(DomainID, GFN)
    case grantMap(Int, granter: DomainID, into: DomainID, GFN, readOnly: Bool)
    case grantUnmap(DomainID, GFN)
    case mapSharedInfo(DomainID, GFN)
    case mapGrantFrame(DomainID, GFN)
    case gmfn(DomainID, idx: GFN, GFN)
    case foreign(DomainID, from: DomainID, idx: GFN, GFN)
    case removePhysmap(DomainID, GFN)
    case beginMove(DomainID, idx: GFN, GFN, size: Int)
    case moveNext
    case finishMove
    /// The next `n` IOMMU completion waits time out (a lost CMD_SYNC).
    case failIOMMUSyncs(Int)
    case retryFlush(DomainID)
}

/// The model. Frames are `frame(i)` for i in 0..<ramFrames, plus each
/// domain's xenheap frames (shared_info, one grant frame).
///
/// The model derives every rule from the seed texts, never from the
/// production code: seed 002's grant IOMMU predicate
/// (`grantNeedsIOMMUMapping`), seed 003's cache maintenance (`flag`: set when
/// a frame first becomes reachable by a device that does not snoop, cleared
/// when its last pin goes; each change of it is one clean+invalidate the step
/// must cause), seed 004's `is_ram` hint and 16-bit share count.
struct Model {
    var frames: [MFN: MFrame] = [:]
    /// RAM frame ranges (seed 004's `addr_is_memory`).
    var ram: [Range<UInt64>] = []
    /// MMIO frame ranges of devices the platform says the host owns: the only
    /// non-RAM ranges a DMA share may name (issue 11, item 5).
    var hostDevices: [Range<UInt64>] = []
    /// The host's device address spaces, and whether their devices snoop.
    var hostDMA: [(id: UInt16, coherent: Bool)] = []
    var p2m: [DomainID: [GFN: MEntry]] = [:]
    var iommu: [DomainID: [MFN: MIOMMU]] = [:]
    var nonCoherent: Set<DomainID> = []
    var needsIOMMU: Set<DomainID> = []
    var sharedInfo: [DomainID: MFN] = [:]
    var grantFrame: [DomainID: MFN] = [:]
    var move: MMove? = nil
    /// References this operation drops at its domain's commit, which the
    /// harness settles once it knows whether that commit's IOMMU flush completed.
    var releasesAtCommit: [(DomainID, MFN)] = []
    /// References a domain keeps until its owed IOMMU flush completes.
    var owed: [DomainID: [MFN]] = [:]

    /// Seed 002 (Julien Grall's review of "fix gnttab_need_iommu_mapping"): a
    /// grant mapping needs the IOMMU mapping exactly when the domain is
    /// direct mapped **and** the IOMMU is enabled for it. Whether the IOMMU
    /// shares the P2M (Xen's `iommu_use_hap_pt`, so `need_sync` false) must
    /// not matter: tying the answer to `need_sync` was the regression, false
    /// on Arm where the tables are always shared.
    static func grantNeedsIOMMUMapping(directMapped: Bool, iommuEnabled: Bool, sharesPageTables: Bool) -> Bool {
        _ = sharesPageTables
        return directMapped && iommuEnabled
    }

    /// Seed 004: "At some point we may end up needing more than the current 16
    /// bits for refcounting": a frame takes at most 2^16 - 1 DMA shares, and
    /// the one after is refused, not wrapped.
    static let dmaShareLimit = Int(UInt16.max)

    /// `pages` frames from `first`, or nil if empty or past the top of the
    /// 64-bit physical address space.
    static func frameRange(_ first: MFN, _ pages: UInt64) -> Range<UInt64>? {
        let top: UInt64 = 1 << 52  // 2^64 bytes in 4 KiB frames: the first frame one cannot end before
        guard pages > 0, first.raw < top, pages < top - first.raw else { return nil }
        return first.raw..<(first.raw + pages)
    }

    func isRAM(_ m: MFN) -> Bool { ram.contains { $0.contains(m.raw) } }
    func touchesRAM(_ r: Range<UInt64>) -> Bool { ram.contains { $0.overlaps(r) } }
    func insideHostDevice(_ r: Range<UInt64>) -> Bool {
        hostDevices.contains { $0.lowerBound <= r.lowerBound && r.upperBound <= $0.upperBound }
    }
    var hostHasNonCoherentDMA: Bool { hostDMA.contains { !$0.coherent } }

    /// Whether `times` more DMA shares of RAM frame `m` are allowed (seed 004:
    /// the first needs a page the host owns alone; later ones a page already
    /// shared with the IOMMU and no one else, under the count's limit).
    func canShareDMA(_ m: MFN, times: Int) -> Bool {
        let f = frames[m]!
        if f.dma == 0 { return exclusivelyHostOwned(m) && times <= Self.dmaShareLimit }
        return f.owner == .host && f.borrower == .iommu && f.hostState == .sharedOwned
            && f.dma + times <= Self.dmaShareLimit
    }

    /// The first share makes the frame reachable by every host device address
    /// space: cleaned (flag set) if one of them does not snoop (seed 003).
    mutating func shareDMA(_ m: MFN, times: Int) {
        if frames[m]!.dma == 0 {
            frames[m]!.hostState = .sharedOwned
            frames[m]!.borrower = .iommu
            if hostHasNonCoherentDMA { frames[m]!.flag = true }
        }
        frames[m]!.dma += times
    }

    func ownRAM(_ d: DomainID, _ g: GFN) -> MFN? {
        guard let e = p2m[d]?[g], e.type == .ramRW || e.type == .ramRO, let f = frames[e.mfn] else { return nil }
        return f.owner == .guest(d) && f.allocated && !f.xenheap ? e.mfn : nil
    }

    func exclusivelyHostOwned(_ m: MFN) -> Bool {
        guard let f = frames[m] else { return false }
        return f.owner == .host && f.dma == 0 && f.borrower == .none && f.hostState == .owned && f.refs == 0
    }

    /// Drops one reference; a frame nobody holds and its owner gave up goes to the host.
    mutating func release(_ m: MFN) {
        frames[m]!.refs -= 1
        if frames[m]!.refs == 0 && !frames[m]!.allocated { frames[m] = .hostOwned }
    }

    /// Drops `m`'s reference when domain `d`'s commit completes its flush.
    mutating func releaseAtCommit(_ d: DomainID, _ m: MFN) { releasesAtCommit.append((d, m)) }

    /// After the real operation: a domain whose flush is still owed keeps this
    /// operation's references with the earlier ones; a domain whose flush
    /// completed (this commit, or a retry taking the owed batch over) drops them all.
    mutating func settleCommits(owesFlush: (DomainID) -> Bool) {
        for (d, m) in releasesAtCommit { owed[d, default: []].append(m) }
        releasesAtCommit.removeAll()
        for (d, held) in owed where !owesFlush(d) {
            for m in held { release(m) }
            owed[d] = nil
        }
    }

    mutating func enter(_ m: MFN, _ d: DomainID) {
        if nonCoherent.contains(d) { frames[m]!.flag = true }
    }

    /// Whether stage 2 forces write-back (FEAT_S2FWB with HCR_EL2.FWB): then a
    /// guest with its caches off still reads through the caches.
    var stage2ForcesWriteBack = false
    /// Frames this step handed from the host (who wrote them through its
    /// caches) to a guest, which may read them with its caches off.
    var filledForGuest: Set<MFN> = []

    /// The caches-off rule (Arm ARM, "Non-cacheable accesses" and the KVM
    /// practice of cleaning a page before a guest can map it): a frame that
    /// becomes a guest's must be cleaned to the point of coherency first,
    /// unless stage 2 forces write-back.
    mutating func handToGuest(_ m: MFN, _ d: DomainID) {
        enter(m, d)
        if !stage2ForcesWriteBack { filledForGuest.insert(m) }
    }

    /// Applies `op`; false (and no change) when the real code must refuse it.
    mutating func apply(_ op: Op, frame: (Int) -> MFN) -> Bool {
        switch op {
        case .shareDMA(let first, let n, let isRAM):
            guard let r = Self.frameRange(first, n) else { return false }
            if !isRAM {
                // Seed 004: "'is_ram' is only a hint provided by the host": a
                // range with any RAM in it is refused; device memory is not
                // counted, and only a device the host owns may be named.
                return !touchesRAM(r) && insideHostDevice(r)
            }
            // Every frame RAM and shareable, or nothing changes (the walk
            // stops at the first frame that is not: bounded by the RAM).
            var k = r.lowerBound
            while k < r.upperBound {
                guard self.isRAM(MFN(raw: k)), canShareDMA(MFN(raw: k), times: 1) else { return false }
                k += 1
            }
            for k in r { shareDMA(MFN(raw: k), times: 1) }
        case .pumpDMA(let i, let times):
            guard times > 0, canShareDMA(frame(i), times: times) else { return false }
            shareDMA(frame(i), times: times)
        case .unshareDMA(let first, let n):
            guard let r = Self.frameRange(first, n) else { return false }
            // Device memory was never counted: nothing to drop.
            if insideHostDevice(r) { return true }
            var k = r.lowerBound
            while k < r.upperBound {
                guard isRAM(MFN(raw: k)), frames[MFN(raw: k)]!.dma > 0 else { return false }
                k += 1
            }
            for k in r {
                let m = MFN(raw: k)
                frames[m]!.dma -= 1
                if frames[m]!.dma == 0 { frames[m] = .hostOwned }
            }
        case .attachDMA(let id, let coherent):
            guard !hostDMA.contains(where: { $0.id == id }) else { return false }
            // Seed 003 (vfio's replay): every frame already shared for DMA
            // becomes reachable by the new domain at once.
            if !coherent {
                for (m, f) in frames where f.dma > 0 { frames[m]!.flag = true }
            }
            hostDMA.append((id, coherent))
        case .detachDMA(let id):
            guard let i = hostDMA.firstIndex(where: { $0.id == id }) else { return false }
            // Lazily: the frames keep their mark until their last pin goes.
            hostDMA.remove(at: i)
        case .donate(let i, let d, let g):
            let m = frame(i)
            guard p2m[d]![g] == nil, exclusivelyHostOwned(m) else { return false }
            frames[m] = MFrame(owner: .guest(d), hostState: .noPage, refs: 1, allocated: true)
            handToGuest(m, d)
            p2m[d]![g] = MEntry(mfn: m, type: .ramRW)
        case .reclaim(let d, let g):
            guard let m = ownRAM(d, g), frames[m]!.hostState == .noPage else { return false }
            p2m[d]![g] = nil
            frames[m]!.allocated = false
            releaseAtCommit(d, m)
        case .donateHyp(let i):
            guard exclusivelyHostOwned(frame(i)) else { return false }
            frames[frame(i)] = MFrame(owner: .hypervisor, hostState: .noPage)
        case .returnHyp(let i):
            guard frames[frame(i)]!.owner == .hypervisor, !frames[frame(i)]!.xenheap else { return false }
            frames[frame(i)] = .hostOwned
        case .shareHyp(let i):
            guard exclusivelyHostOwned(frame(i)) else { return false }
            frames[frame(i)]!.hostState = .sharedOwned
            frames[frame(i)]!.borrower = .hypervisor
        case .unshareHyp(let i):
            guard frames[frame(i)]!.owner == .host, frames[frame(i)]!.borrower == .hypervisor else { return false }
            frames[frame(i)]!.hostState = .owned
            frames[frame(i)]!.borrower = .none
        case .shareGuest(let i, let d, let g):
            let m = frame(i)
            guard p2m[d]![g] == nil, exclusivelyHostOwned(m) else { return false }
            frames[m]!.hostState = .sharedOwned
            frames[m]!.borrower = .guest(d)
            handToGuest(m, d)
            p2m[d]![g] = MEntry(mfn: m, type: .ramRW)
        case .unshareGuest(let i, let d, let g):
            let m = frame(i)
            guard p2m[d]![g]?.mfn == m, frames[m]!.owner == .host, frames[m]!.borrower == .guest(d) else { return false }
            p2m[d]![g] = nil
            // The host gets its frame back at once, but cannot hand it on
            // while the guest's old translation may still be cached.
            frames[m] = .hostOwned
            frames[m]!.refs = 1
            releaseAtCommit(d, m)
        case .guestShareHost(let d, let g):
            guard let m = ownRAM(d, g), frames[m]!.hostState == .noPage else { return false }
            frames[m]!.hostState = .sharedBorrowed
        case .guestUnshareHost(let d, let g):
            guard let m = ownRAM(d, g), frames[m]!.hostState == .sharedBorrowed else { return false }
            frames[m]!.hostState = .noPage
        case .grantMap(let i, let granter, let into, let g, let ro):
            let m = frame(i)
            let f = frames[m]!
            guard granter != into, f.owner == .guest(granter), f.allocated, !f.xenheap, p2m[into]![g] == nil else { return false }
            let identity = GFN(raw: m.raw)
            if needsIOMMU.contains(into) && iommu[into]![m] == nil && p2m[into]![identity] != nil { return false }
            frames[m]!.refs += 1
            enter(m, into)
            p2m[into]![g] = MEntry(mfn: m, type: ro ? .grantMapRO : .grantMapRW)
            if needsIOMMU.contains(into) {
                var c = iommu[into]![m] ?? MIOMMU(count: 0, writable: 0)
                c.count += 1
                if !ro { c.writable += 1 }
                iommu[into]![m] = c
                p2m[into]![identity] = MEntry(mfn: m, type: c.writable > 0 ? .iommuMapRW : .iommuMapRO)
            }
        case .grantUnmap(let d, let g):
            guard let e = p2m[d]![g], e.type == .grantMapRW || e.type == .grantMapRO else { return false }
            p2m[d]![g] = nil
            if var c = iommu[d]![e.mfn] {
                c.count -= 1
                if e.type == .grantMapRW { c.writable -= 1 }
                let identity = GFN(raw: e.mfn.raw)
                if c.count == 0 {
                    iommu[d]![e.mfn] = nil
                    p2m[d]![identity] = nil
                } else {
                    iommu[d]![e.mfn] = c
                    p2m[d]![identity] = MEntry(mfn: e.mfn, type: c.writable > 0 ? .iommuMapRW : .iommuMapRO)
                }
            }
            releaseAtCommit(d, e.mfn)
        case .mapSharedInfo(let d, let g), .mapGrantFrame(let d, let g):
            let isShared: Bool
            if case .mapSharedInfo = op { isShared = true } else { isShared = false }
            guard let m = isShared ? sharedInfo[d] : grantFrame[d] else { return false }
            guard frames[m]!.xenGFN == nil, p2m[d]![g] == nil, g.raw < TypeInfo.invalidGFN else { return false }
            enter(m, d)
            p2m[d]![g] = MEntry(mfn: m, type: .ramRW)
            frames[m]!.xenGFN = g
        case .gmfn(let d, let idx, let g):
            return moveOne(d, idx, g, deferred: false)
        case .foreign(let d, let fd, let idx, let g):
            guard fd != d, let m = ownRAM(fd, idx), p2m[d]![g] == nil else { return false }
            frames[m]!.refs += 1
            enter(m, d)
            p2m[d]![g] = MEntry(mfn: m, type: .mapForeignRW)
        case .removePhysmap(let d, let g):
            guard let e = p2m[d]![g] else { return false }
            switch e.type {
            case .ramRW, .ramRO:
                let f = frames[e.mfn]!
                guard f.owner == .guest(d), f.xenheap || f.allocated, f.hostState != .sharedBorrowed else { return false }
                p2m[d]![g] = nil
                if f.xenheap { frames[e.mfn]!.xenGFN = nil }
            case .mapForeignRW, .mapForeignRO:
                p2m[d]![g] = nil
                releaseAtCommit(d, e.mfn)
            case .mmioDirectDevice:
                p2m[d]![g] = nil
            default:
                return false
            }
        case .beginMove(let d, let idx, let g, let size):
            guard move == nil, size > 0 else { return false }
            move = MMove(domain: d, idx: idx, gfn: g, remaining: size)
        case .moveNext:
            guard let mv = move else { return false }
            if mv.remaining == 0 || mv.held.count + 0 >= GmfnRangeMove.chunkFrames { return true }
            return moveOne(mv.domain, mv.idx, mv.gfn, deferred: true)
        case .finishMove:
            guard let mv = move else { return false }
            for m in mv.held { releaseAtCommit(mv.domain, m) }
            move = nil
        case .failIOMMUSyncs, .retryFlush:
            break
        }
        return true
    }

    /// A gmfn move whose replacement of the occupied destination `g` lost its
    /// IOMMU wait (`EBUSY(.iommuNotConfirmed)`): the occupant left the P2M and
    /// is freed as the move would have freed it; the source did not move.
    mutating func displaceWithoutMove(_ d: DomainID, _ g: GFN) -> Bool {
        guard let o = p2m[d]![g]?.mfn else { return false }
        p2m[d]![g] = nil
        frames[o]!.allocated = false
        releaseAtCommit(d, o)
        return true
    }

    /// One gmfn move, deferred (a range chunk holding the frame) or not.
    mutating func moveOne(_ d: DomainID, _ idx: GFN, _ g: GFN, deferred: Bool) -> Bool {
        guard let m = ownRAM(d, idx) else { return false }
        if idx != g {
            var displaced: MFN? = nil
            if p2m[d]![g] != nil {
                guard let o = ownRAM(d, g), frames[o]!.hostState == .noPage else { return false }
                displaced = o
            }
            let type = p2m[d]![idx]!.type
            p2m[d]![g] = MEntry(mfn: m, type: type)
            p2m[d]![idx] = nil
            if let o = displaced {
                frames[o]!.allocated = false
                releaseAtCommit(d, o)
            }
            // The moved frame is held until the flush of its old GFN
            // completes: at the chunk's end for a range, this commit otherwise.
            frames[m]!.refs += 1
            if deferred { move!.held.append(m) } else { releaseAtCommit(d, m) }
        }
        if deferred {
            move!.idx = move!.idx.adding(1)
            move!.gfn = move!.gfn.adding(1)
            move!.remaining -= 1
        }
        return true
    }
}

/// Runs the same operations on the real code and on the model.
struct Harness: ~Copyable {
    var w: World
    var model = Model()
    var move: GmfnRangeMove? = nil
    let ramFrames: Int
    let domains: [DomainID]
    /// GFNs compared between model and P2M, per domain.
    let gfns: [GFN]
    /// Translations a TLB may still hold: (domain, gfn, mfn).
    var shadowTLB: Set<ShadowEntry> = []
    /// Translations the IOMMU may still hold, with who had the frame while it
    /// was mapped. One leaves only by an invalidation of it followed by a
    /// completion wait that succeeded.
    var shadowIOTLB: Set<ShadowIOEntry> = []
    /// IOMMU invalidations issued since the last completion wait.
    var issuedIOMMU: [(vmid: UInt16, first: UInt64, end: UInt64)] = []
    /// Injected completion failures not yet consumed, as of the last step.
    var failuresArmed = 0
    var logCursor = 0
    var steps = 0
    var refusals = 0
    /// Steps after which some domain still owed an IOMMU flush.
    var stepsOwingFlush = 0
    /// Moves refused with `EBUSY(.iommuNotConfirmed)` (destination freed, source kept).
    var incompleteMoves = 0
    /// Cache maintenance calls already compared with the model.
    var cacheCursor = 0
    /// What the run exercised (the test requires each to happen).
    var stats = Stats()

    struct Stats {
        /// Successful grant mappings, by the receiving domain's (direct
        /// mapped, IOMMU on, page tables shared) as bits 2, 1, 0.
        var grantMapsByConfig = Set<Int>()
        /// Frames cleaned+invalidated, as the model required.
        var cleans = 0
        /// Non-RAM shares accepted (a declared host device) and refused
        /// because the host's `isRAM` was a lie (RAM in the range).
        var deviceSharesAccepted = 0
        var isRAMLiesRefused = 0
        /// Shares refused at the 16-bit limit, and the highest count reached.
        var shareLimitRefusals = 0
        var maxDMAShares = 0
        mutating func merge(_ o: Stats) {
            grantMapsByConfig.formUnion(o.grantMapsByConfig)
            cleans += o.cleans
            deviceSharesAccepted += o.deviceSharesAccepted
            isRAMLiesRefused += o.isRAMLiesRefused
            shareLimitRefusals += o.shareLimitRefusals
            maxDMAShares = max(maxDMAShares, o.maxDMAShares)
        }
    }

    struct ShadowEntry: Hashable {
        var vmid: UInt16
        var gfn: GFN
        var mfn: MFN
    }

    struct ShadowIOEntry: Hashable {
        var vmid: UInt16
        var gfn: GFN
        var mfn: MFN
        var owner: PageOwner
        var borrower: Borrower
        var dmaShares: UInt16
        func hash(into h: inout Hasher) {
            h.combine(vmid)
            h.combine(gfn)
            h.combine(mfn)
        }
    }

    func frame(_ i: Int) -> MFN { bank0.adding(UInt64(i)) }

    /// MMIO of two devices the host owns: one far from RAM, one right after
    /// bank 0 (so a range can span RAM and a device), and MMIO the host does
    /// not own (another device's, or the hypervisor's own).
    static let hostDeviceA = deviceFrame
    static let hostDeviceB = bank0.adding(8)
    static let hostDeviceFrames: UInt64 = 4
    static let foreignDevice = MFN(raw: deviceFrame.raw + 0x10)

    /// The default configurations: d1 is direct-mapped with the IOMMU on
    /// (grant IOMMU mappings), d2 does not snoop (non-coherent DMA).
    static func defaultConfigs(_ count: Int) -> [DomainConfig] {
        var configs: [DomainConfig] = []
        for k in 1...count {
            let first = k == 1
            configs.append(DomainConfig(id: DomainID(UInt16(k)), directMapped: first, iommuEnabled: first,
                                        enforcesCacheCoherency: k != 2))
        }
        return configs
    }

    /// d1 has a shared_info and a grant frame.
    init(ramFrames: Int, gfnCount: Int, domainCount: Int = 2, configs: [DomainConfig]? = nil) {
        self.ramFrames = ramFrames
        w = World()
        var ds: [DomainID] = []
        for config in configs ?? Self.defaultConfigs(domainCount) {
            let id = config.id
            w.addDomain(config, tablePages: 24)
            model.p2m[id] = [:]
            model.iommu[id] = [:]
            if Model.grantNeedsIOMMUMapping(directMapped: config.directMapped, iommuEnabled: config.iommuEnabled,
                                            sharesPageTables: config.sharesP2MWithIOMMU) {
                model.needsIOMMU.insert(id)
            }
            if !config.enforcesCacheCoherency { model.nonCoherent.insert(id) }
            ds.append(id)
        }
        domains = ds
        for bank in testBanks {
            model.ram.append(bank.base.frame.raw..<(bank.base.frame.raw + (bank.bytes >> PageSize.shift4K)))
        }
        for device in [Self.hostDeviceA, Self.hostDeviceB] {
            try! w.o.declareHostDevice(device.address, bytes: Self.hostDeviceFrames << PageSize.shift4K)
            model.hostDevices.append(device.raw..<(device.raw + Self.hostDeviceFrames))
        }
        for i in 0..<ramFrames { model.frames[bank0.adding(UInt64(i))] = .hostOwned }
        for i in ramFrames..<8 { model.frames[bank0.adding(UInt64(i))] = .hostOwned }
        // Xenheap frames for d1.
        let d1 = ds[0]
        for (k, f) in [bank1, bank1.adding(1)].enumerated() {
            try! w.o.allocateXenheapPage(f)
            if k == 0 { try! w.o.installSharedInfo(f, for: d1) } else { try! w.o.installGrantFrame(f, for: d1, status: false) }
            model.frames[f] = MFrame(owner: .guest(d1), hostState: .noPage, refs: 1, allocated: true, xenheap: true)
        }
        for i in 2..<8 { model.frames[bank1.adding(UInt64(i))] = .hostOwned }
        model.sharedInfo[d1] = bank1
        model.grantFrame[d1] = bank1.adding(1)
        // The xenheap frames the hypervisor filled were cleaned as d1 got them.
        let setupCleans = w.o.cache.ops.compactMap { (c) -> MFN? in
            if case .cleanAndInvalidate(let a, _) = c { return a.frame } else { return nil }
        }
        precondition(setupCleans == [bank1, bank1.adding(1)], "xenheap frames not cleaned for their guest")
        cacheCursor = w.o.cache.ops.count
        var g: [GFN] = (0..<gfnCount).map { GFN(raw: UInt64($0)) }
        for i in 0..<ramFrames { g.append(GFN(raw: bank0.raw + UInt64(i))) }
        gfns = g
    }

    /// Runs `op` on both sides, then compares and checks every invariant.
    mutating func step(_ op: Op, file: StaticString = #filePath, line: UInt = #line) -> Bool {
        steps += 1
        let before = w.snapshot()
        let flagsBefore = model.frames.mapValues(\.flag)
        let modelBefore = model
        let expected = model.apply(op, frame: { bank0.adding(UInt64($0)) })
        var failure: OwnershipError? = nil
        do {
            try run(op)
        } catch {
            failure = error
        }
        // The one refusal that changes state: a move's replacement whose
        // break-before-make the IOMMU did not confirm (an armed failure hit
        // its wait). The model cannot see which wait an armed failure hits,
        // so it follows the real side here, and checks the rest as usual.
        if expected, case .EBUSY(.iommuNotConfirmed(let g))? = failure {
            var d: DomainID? = nil
            if case .gmfn(let d0, _, _) = op { d = d0 } else if case .moveNext = op { d = modelBefore.move?.domain }
            model = modelBefore
            guard let d, failuresArmed > 0, model.displaceWithoutMove(d, g) else {
                XCTFail("\(op): unexpected \(failure!)", file: file, line: line)
                return false
            }
            incompleteMoves += 1
            model.settleCommits { (d: DomainID) -> Bool in
                w.o.withDomain(d) { (x: borrowing GuestDomain<TestP2M>) in x.owesFlush }!
            }
            if !model.owed.isEmpty { stepsOwingFlush += 1 }
            let mustClean = Set(model.frames.keys.filter { flagsBefore[$0] != model.frames[$0]!.flag })
                .union(model.filledForGuest)
            model.filledForGuest.removeAll()
            guard checkCacheMaintenance(op, mustClean, file: file, line: line) else { return false }
            refusals += 1
            return check(op, file: file, line: line)
        }
        model.settleCommits { (d: DomainID) -> Bool in
            w.o.withDomain(d) { (x: borrowing GuestDomain<TestP2M>) in x.owesFlush }!
        }
        if !model.owed.isEmpty { stepsOwingFlush += 1 }
        // Seed 003: each frame whose mark changed was cleaned+invalidated
        // once, and so was each frame the host handed to a guest (the
        // caches-off rule); no other frame was, and a DSB followed the last clean.
        let mustClean = Set(model.frames.keys.filter { flagsBefore[$0] != model.frames[$0]!.flag })
            .union(model.filledForGuest)
        model.filledForGuest.removeAll()
        guard checkCacheMaintenance(op, mustClean, file: file, line: line) else { return false }
        note(op, expected: expected, failure: failure)
        if let failure {
            refusals += 1
            if expected {
                XCTFail("\(op): model accepts, real refused with \(failure)", file: file, line: line)
                return false
            }
            // Invariant 5: a failed call left everything byte-for-byte as it was.
            if w.snapshot() != before {
                XCTFail("\(op) failed with \(failure) but changed the state", file: file, line: line)
                return false
            }
        } else if !expected {
            XCTFail("\(op): real accepted, model refuses", file: file, line: line)
            return false
        }
        return check(op, file: file, line: line)
    }

    /// Compares the cache maintenance the step caused (the fake recorded it)
    /// with the frames the model says must be cleaned.
    mutating func checkCacheMaintenance(_ op: Op, _ mustClean: Set<MFN>, file: StaticString, line: UInt) -> Bool {
        let ops = w.o.cache.ops[cacheCursor...]
        cacheCursor = w.o.cache.ops.count
        var cleaned: [MFN: Int] = [:]
        for c in ops {
            switch c {
            case .clean:
                XCTFail("after \(op): a clean without invalidate \(c) (a CPU line would hide what a device wrote)",
                        file: file, line: line)
                return false
            case .cleanAndInvalidate(let a, let n):
                for k in 0..<(n >> PageSize.shift4K) { cleaned[a.frame.adding(k), default: 0] += 1 }
            case .sync:
                break
            }
        }
        let expected = Dictionary(uniqueKeysWithValues: mustClean.map { ($0, 1) })
        if cleaned != expected {
            let show = { (d: [MFN: Int]) in d.sorted { $0.key < $1.key }.map { "\(String($0.key.raw, radix: 16))x\($0.value)" } }
            XCTFail("after \(op): cleaned \(show(cleaned)), model requires \(show(expected))", file: file, line: line)
            return false
        }
        if let last = ops.last, last != .sync {
            XCTFail("after \(op): no DSB after the last clean (\(Array(ops)))", file: file, line: line)
            return false
        }
        stats.cleans += mustClean.count
        return true
    }

    /// Counts what the step exercised.
    mutating func note(_ op: Op, expected: Bool, failure: OwnershipError?) {
        switch op {
        case .grantMap(_, _, let into, _, _) where failure == nil:
            let c = w.o.withDomain(into) { (x: borrowing GuestDomain<TestP2M>) in x.config }!
            stats.grantMapsByConfig.insert((c.directMapped ? 4 : 0) | (c.iommuEnabled ? 2 : 0) | (c.sharesP2MWithIOMMU ? 1 : 0))
        case .shareDMA(let first, let n, false):
            if failure == nil { stats.deviceSharesAccepted += 1 }
            if let r = Model.frameRange(first, n), model.touchesRAM(r), failure != nil { stats.isRAMLiesRefused += 1 }
        default:
            break
        }
        if case .EOVERFLOW(.dmaShareCount) = failure { stats.shareLimitRefusals += 1 }
        for f in model.frames.values { stats.maxDMAShares = max(stats.maxDMAShares, f.dma) }
    }

    mutating func run(_ op: Op) throws(OwnershipError) {
        let page = PageSize.bytes4K
        switch op {
        case .shareDMA(let first, let n, let isRAM):
            try w.o.hostShareDMA(first.address, bytes: n << PageSize.shift4K, isRAM: isRAM)
        case .unshareDMA(let first, let n): try w.o.hostUnshareDMA(first.address, bytes: n << PageSize.shift4K)
        case .pumpDMA(let i, let times):
            for _ in 0..<times { try w.o.hostShareDMA(frame(i).address, bytes: page, isRAM: true) }
        case .attachDMA(let id, let coherent):
            try w.o.attachHostDMADomain(DMADomain(id: id, enforcesCacheCoherency: coherent))
        case .detachDMA(let id): try w.o.detachHostDMADomain(id: id)
        case .donate(let i, let d, let g): try w.o.hostDonateToGuest(frame(i), to: d, at: g)
        case .reclaim(let d, let g): try w.o.reclaim(d, gfn: g)
        case .donateHyp(let i): try w.o.hostDonateToHypervisor(frame(i))
        case .returnHyp(let i): try w.o.hypervisorDonateToHost(frame(i))
        case .shareHyp(let i): try w.o.hostShareWithHypervisor(frame(i))
        case .unshareHyp(let i): try w.o.hostUnshareWithHypervisor(frame(i))
        case .shareGuest(let i, let d, let g): try w.o.hostShareWithGuest(frame(i), with: d, at: g)
        case .unshareGuest(let i, let d, let g): try w.o.hostUnshareWithGuest(frame(i), with: d, at: g)
        case .guestShareHost(let d, let g): try w.o.guestShareWithHost(d, gfn: g)
        case .guestUnshareHost(let d, let g): try w.o.guestUnshareWithHost(d, gfn: g)
        case .grantMap(let i, let granter, let into, let g, let ro):
            try w.o.grantMap(frame(i), grantedBy: granter, into: into, at: g, readOnly: ro)
        case .grantUnmap(let d, let g): try w.o.grantUnmap(d, gfn: g)
        case .mapSharedInfo(let d, let g): _ = try w.o.addToPhysmap(d, .sharedInfo, idx: 0, gfn: g)
        case .mapGrantFrame(let d, let g): _ = try w.o.addToPhysmap(d, .grantTable(index: 0, status: false), idx: 0, gfn: g)
        case .gmfn(let d, let idx, let g): _ = try w.o.addToPhysmap(d, .gmfn, idx: idx.raw, gfn: g)
        case .foreign(let d, let fd, let idx, let g): _ = try w.o.addToPhysmap(d, .gmfnForeign(fd), idx: idx.raw, gfn: g)
        case .removePhysmap(let d, let g): try w.o.removePhysmap(d, gfn: g)
        case .beginMove(let d, let idx, let g, let size):
            guard move == nil else { throw .EBUSY(.gfnOccupied(d, g)) }   // harness rule: one move at a time
            move = try w.o.beginGmfnRange(d, idx: idx, gfn: g, size: UInt64(size))
        case .moveNext:
            guard var m = move.take() else { throw .EINVAL(.rangeEmpty) }
            var failure: OwnershipError? = nil
            do {
                _ = try w.o.moveNextFrame(&m)
            } catch {
                failure = error
            }
            move = consume m
            if let failure { throw failure }
        case .finishMove:
            guard let m = move.take() else { throw .EINVAL(.rangeEmpty) }
            _ = w.o.finishChunk(m)
        case .failIOMMUSyncs(let n):
            w.log.failingIOMMUSyncs += n
            failuresArmed += n
        case .retryFlush(let d):
            _ = try w.o.retryFlush(d)
        }
    }

    /// Compares with the model and checks the invariants.
    mutating func check(_ op: Op, file: StaticString, line: UInt) -> Bool {
        var ok = true
        func fail(_ message: String) {
            XCTFail("after \(op): \(message)", file: file, line: line)
            ok = false
        }
        // The model's frames and P2M entries.
        for (mfn, mf) in model.frames {
            let s = w.o.state(of: mfn)!
            let real = MFrame(owner: s.owner, hostState: s.hostState, borrower: s.borrower, dma: Int(s.dmaShares),
                              refs: Int(s.references), allocated: s.isAllocated, xenheap: s.isXenheap,
                              xenGFN: w.o.xenheapGFN(of: mfn), flag: s.cacheFlushRequired)
            if real != mf { fail("frame \(String(mfn.raw, radix: 16)): real \(real) model \(mf)") }
        }
        var entriesTo: [MFN: [(DomainID, GFN, P2MType)]] = [:]
        for d in domains {
            for g in gfns {
                let real = w.lookup(d, g).map { MEntry(mfn: $0.mfn, type: $0.type) }
                if real != model.p2m[d]![g] { fail("\(d) gfn \(g.raw): real \(String(describing: real)) model \(String(describing: model.p2m[d]![g]))") }
                if let r = real { entriesTo[r.mfn, default: []].append((d, g, r.type)) }
            }
            let iommu = w.o.withDomain(d) { (x: borrowing GuestDomain<TestP2M>) in x.iommuGrantMappings }!
            let modelIOMMU = model.iommu[d]!.sorted { $0.key < $1.key }.map {
                IOMMUGrantMapping(frame: $0.key, mappings: UInt32($0.value.count), writableMappings: UInt32($0.value.writable))
            }
            if iommu != modelIOMMU { fail("\(d) IOMMU mappings \(iommu) model \(modelIOMMU)") }
        }
        // References a range chunk holds, and those kept for owed IOMMU flushes.
        let held = (model.move?.held ?? []) + model.owed.values.joined()
        for mfn in model.frames.keys {
            let s = w.o.state(of: mfn)!
            // Invariant 1: a DMA-shared frame belongs to the host and is lent to the IOMMU only.
            if s.dmaShares > 0 && (s.owner != .host || s.borrower != .iommu || s.hostState != .sharedOwned) {
                fail("DMA-shared frame \(mfn.raw) is \(s)")
            }
            // Invariant 4: references = owner's + mapping references + held across a deferred flush.
            let mappingRefs = (entriesTo[mfn] ?? []).filter {
                [.mapForeignRW, .mapForeignRO, .grantMapRW, .grantMapRO].contains($0.2)
            }.count
            let expectedRefs = (s.isAllocated ? 1 : 0) + mappingRefs + held.filter { $0 == mfn }.count
            if Int(s.references) != expectedRefs { fail("frame \(mfn.raw) references \(s.references), live \(expectedRefs)") }
            // Invariant 3: a valid xenheap GFN matches exactly one P2M entry, and that one.
            if s.isXenheap {
                let entries = entriesTo[mfn] ?? []
                if let g = w.o.xenheapGFN(of: mfn) {
                    guard case .guest(let d) = s.owner,
                          entries.count == 1, entries[0].0 == d, entries[0].1 == g else {
                        fail("xenheap frame \(mfn.raw) GFN \(g.raw) entries \(entries)"); continue
                    }
                } else if !entries.isEmpty {
                    fail("xenheap frame \(mfn.raw) mapped without a GFN: \(entries)")
                }
            }
        }
        // Invariant 2: no frame is freed while a TLB may still translate to it.
        for e in w.log.events[logCursor...] {
            switch e {
            case .tlbiRange(let vmid, let page, let n):
                shadowTLB = shadowTLB.filter { !($0.vmid == vmid && $0.gfn.raw >= page && $0.gfn.raw < page + n) }
            case .tlbiVMID(let vmid):
                shadowTLB = shadowTLB.filter { $0.vmid != vmid }
            default: break
            }
        }
        // Invariant 6: no frame is freed or handed on while an IOMMU
        // invalidation of a translation to it is unconfirmed. The fake fails
        // the next `failingIOMMUSyncs` waits, so this step's first
        // (armed - still armed) waits are the ones that failed; a failed wait
        // confirms nothing, and what it covered must be issued again.
        var failing = failuresArmed - w.log.failingIOMMUSyncs
        failuresArmed = w.log.failingIOMMUSyncs
        for e in w.log.events[logCursor...] {
            switch e {
            case .iommuRange(let vmid, let page, let n): issuedIOMMU.append((vmid, page, page + n))
            case .iommuAll(let vmid): issuedIOMMU.append((vmid, 0, .max))
            case .iommuSync where failing > 0:
                failing -= 1
                issuedIOMMU.removeAll()
            case .iommuSync:
                let confirmed = issuedIOMMU
                shadowIOTLB = shadowIOTLB.filter { t in
                    !confirmed.contains { $0.vmid == t.vmid && t.gfn.raw >= $0.first && t.gfn.raw < $0.end }
                }
                issuedIOMMU.removeAll()
            default: break
            }
        }
        if failing != 0 { fail("\(failing) injected IOMMU failures not seen as waits") }
        logCursor = w.log.events.count
        for (mfn, list) in entriesTo {
            for (d, g, _) in list {
                shadowTLB.insert(ShadowEntry(vmid: d.raw + 1, gfn: g, mfn: mfn))
                let s = w.o.state(of: mfn) ?? .hostOwned
                shadowIOTLB.insert(ShadowIOEntry(vmid: d.raw + 1, gfn: g, mfn: mfn, owner: s.owner,
                                                 borrower: s.borrower, dmaShares: s.dmaShares))
            }
        }
        for e in shadowIOTLB where w.o.frames.isRAM(e.mfn) {
            if w.lookup(DomainID(e.vmid - 1), e.gfn)?.mfn == e.mfn { continue }
            let s = w.o.state(of: e.mfn)!
            // Neither freed (it keeps its owner and a reference) nor handed on
            // (no new borrower, no new DMA share).
            let handedOn = (s.borrower != .none && s.borrower != e.borrower) || s.dmaShares > e.dmaShares
            if s.owner != e.owner || s.references == 0 || handedOn {
                fail("frame \(e.mfn.raw) is \(s) while the IOMMU may still translate GFN \(e.gfn.raw) of vmid \(e.vmid) to it")
            }
        }
        for e in shadowTLB where w.o.frames.isRAM(e.mfn) {
            let d = DomainID(e.vmid - 1)
            let current = w.lookup(d, e.gfn)?.mfn == e.mfn
            if current { continue }
            let s = w.o.state(of: e.mfn)!
            if !(s.owner == .guest(d) && s.references > 0) {
                fail("frame \(e.mfn.raw) is \(s) while \(d) may still translate GFN \(e.gfn.raw) to it")
            }
        }
        if w.o.isPageLockHeld { fail("lock scope leaked: the page lock is still held") }
        return ok
    }

    /// Ends an open range move and completes every owed flush, so no batch is
    /// dropped uncommitted when the harness goes.
    mutating func finish() {
        w.log.failingIOMMUSyncs = 0
        if let m = move.take() { _ = w.o.finishChunk(m) }
        for d in domains {
            guard (try? w.o.retryFlush(d)) == true else { return XCTFail("\(d): owed flush did not complete") }
        }
    }
}
