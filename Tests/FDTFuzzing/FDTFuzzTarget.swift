import AArch64
import Platform

/// What one fuzz input exercises: the whole path the board takes from a DTB
/// pointer (blob, description, PARange check, frame allocator, IOMMU
/// lookups), every walk the board's printers use, and the invariants an
/// accepted description promises. Every rejection arrives as a typed error by
/// construction (`throws(FDTError)`); a trap ends the process, which is the
/// fuzzer's other finding.
public enum FDTFuzzTarget {
    public enum Stage: String, Sendable { case tree, description, parange, allocator, accepted }

    public struct Outcome {
        public var stage: Stage
        /// `FDTError.report.reason` of a rejection, for the statistics.
        public var reason: String?
        /// Broken promises of an accepted (or partly accepted) input.
        public var violations: [String] = []
    }

    /// Stands for an execution that never returns (a parser loop without a
    /// bound): `hv-fuzz` runs it under HV_FUZZ_SPIN_AT, the watchdog test
    /// runs it on a thread of its own. Returns only when `release` says so,
    /// so a test can end it; the fuzz run never does.
    public static func spinForever(until release: () -> Bool = { false }) {
        var turns: UInt64 = 0
        while !release() { turns &+= 1 }
        blackHole(turns)
    }

    @inline(never) static func blackHole(_ value: UInt64) { _ = value }

    public static func execute(_ blob: [UInt8]) -> Outcome {
        blob.withUnsafeBytes { raw in execute(raw) }
    }

    static func execute(_ raw: UnsafeRawBufferPointer) -> Outcome {
        let tree: FlattenedDeviceTree
        do throws(FDTError) {
            tree = try FlattenedDeviceTree(raw)
        } catch {
            var outcome = Outcome(stage: .tree, reason: "\(error.report.reason)")
            if error.report.node != nil { outcome.violations.append("a blob-level error names a node") }
            return outcome
        }
        var outcome = Outcome(stage: .description)
        walk(tree, &outcome)
        let platform: PlatformDescription
        do throws(FDTError) {
            platform = try PlatformDescription(tree)
        } catch {
            outcome.reason = "\(error.report.reason)"
            checkReport(error, tree, &outcome)
            _ = PlatformDescription.earlyServices(tree)
            return outcome
        }
        checkDescription(platform, &outcome)
        do throws(FDTError) {
            try platform.checkMemory(physicalAddressBits: 48)
        } catch {
            outcome.stage = .parange
            outcome.reason = "\(error.report.reason)"
            return outcome
        }
        // The board's check passed: nothing it will map as RAM may cover a device.
        for bank in platform.memoryBanks {
            for device in platform.deviceRegions where bank.overlaps(device) {
                outcome.violations.append("accepted a memory bank over device registers")
            }
        }
        outcome.stage = .allocator
        guard let bank = platform.memoryBanks.first,
              let image = MemoryRange(base: bank.base, size: min(bank.size, 0x1_0000)),
              let blobRange = MemoryRange(base: PhysAddr(raw: bank.base.raw &+ min(bank.size, 0x1_0000)),
                                          size: UInt64(tree.header.totalSize)),
              blobRange.base.raw >= bank.base.raw else {
            outcome.stage = .accepted
            return outcome
        }
        do throws(FrameAllocatorError) {
            var frames = try FrameAllocator(platform: platform, image: image, deviceTree: blobRange)
            checkAllocator(&frames, platform, image, blobRange, &outcome)
            outcome.stage = .accepted
        } catch {
            outcome.reason = "allocator: \(error)"
        }
        return outcome
    }

    /// The walks the board and the printers make over any tree that parsed.
    static func walk(_ tree: FlattenedDeviceTree, _ outcome: inout Outcome) {
        var nodes = 0
        for node in tree.nodes {
            nodes += 1
            guard nodes <= tree.bytes.count / 4 else {
                outcome.violations.append("node walk longer than the structure block allows")
                return
            }
            // The two walks from the root (a path for the printers, the parent
            // for `reg`) are quadratic over all nodes: every eighth node keeps
            // the 10^4 run of `make test` within seconds in a debug build.
            if nodes % 8 == 1 {
                if tree.ancestor(ofNodeAt: node.offset, depth: node.depth) != node
                    || tree.ancestor(ofNodeAt: node.offset, depth: 0) != tree.root {
                    outcome.violations.append("the node's path does not run from the root to the node")
                }
                _ = try? tree.firstCPURange(of: node)
            }
            for property in tree.properties(of: node) {
                let value = tree.value(of: property)
                if value.count != property.length { outcome.violations.append("property value length") }
                _ = tree.name(of: property)
            }
            _ = tree.isEnabled(node)
        }
        for _ in tree.memoryReservations {}
        _ = tree.node(atPath: "serial0")
        _ = tree.node(atPath: "/chosen")
    }

    static func checkReport(_ error: FDTError, _ tree: FlattenedDeviceTree, _ outcome: inout Outcome) {
        guard let node = error.report.node else { return }
        if tree.ancestor(ofNodeAt: node, depth: 0) == nil {
            outcome.violations.append("a rejection names a node offset where no node starts")
        }
    }

    static func checkDescription(_ platform: PlatformDescription, _ outcome: inout Outcome) {
        let banks = Array(platform.memoryBanks)
        for (i, bank) in banks.enumerated() {
            for other in banks[(i + 1)...] where bank.overlaps(other) {
                outcome.violations.append("accepted overlapping memory banks")
            }
        }
        for smmu in platform.smmus where smmu.registers.size == 0 {
            outcome.violations.append("accepted an SMMU without registers")
        }
        if let bridge = platform.pciHostBridge {
            if bridge.firstBus > bridge.lastBus { outcome.violations.append("bus range reversed") }
            if UInt64(bridge.lastBus - bridge.firstBus) + 1 > bridge.ecam.size >> 20 {
                outcome.violations.append("bus range beyond the ECAM")
            }
            for entry in bridge.iommuMap where entry.length != 0 {
                if entry.sidBase > UInt32.max - (entry.length - 1) || entry.ridBase > UInt32.max - (entry.length - 1) {
                    outcome.violations.append("accepted an iommu-map entry that wraps")
                }
            }
            for rid in [UInt16(0), 0x10, 0x100, 0xFFFF] {
                if let target = bridge.iommuTarget(forRequesterID: rid),
                   !bridge.iommuMap.contains(where: { $0.iommu == target.iommu }) {
                    outcome.violations.append("iommu-map lookup names an IOMMU the map does not")
                }
            }
        }
    }

    static func checkAllocator(_ frames: inout FrameAllocator, _ platform: PlatformDescription,
                               _ image: MemoryRange, _ blob: MemoryRange, _ outcome: inout Outcome) {
        var taken: [MFN] = []
        for _ in 0..<16 {
            guard let frame = try? frames.allocate() else { break }
            taken.append(frame)
            let address = frame.address
            if !platform.memoryBanks.contains(where: { $0.contains(address) }) {
                outcome.violations.append("allocator handed out a frame outside every bank")
            }
            if image.contains(address) || blob.contains(address)
                || platform.reservedRanges.contains(where: { $0.contains(address) }) {
                outcome.violations.append("allocator handed out an excluded frame")
            }
        }
        for frame in taken where (try? frames.free(frame)) == nil {
            outcome.violations.append("allocator refused a frame it handed out")
        }
    }
}
