import AArch64
import Translation
import Platform
import SMMUv3

/// One SMMU that answered, made sense and is enabled: what the board's
/// checks ask of it (its features are `handle.smmu.features`). Only that: a
/// list of these is copied element by element, and a whole SMMUDescription
/// in each made every copy and its code larger.
struct ReadySMMU {
    /// The DTB node's phandle, which `iommu-map` entries name.
    let phandle: UInt32?
    let mode: TranslationMode
    let handle: BoardSMMUHandle
}

/// Every SMMU the DTB names is brought up before the first PCI config
/// access: SMMUEN with every STE invalid aborts all incoming transactions
/// (IHI 0070 3.5, C_BAD_STE), and the bring-up sets GBPA.ABORT before it
/// touches CR0, so no device the enumeration wakes can DMA around the SMMU,
/// whether or not a test device is found later. A node where nothing answers,
/// or whose ID registers this driver cannot drive, is reported and skipped;
/// the others are used.
enum SMMUSetup {
    static func bringUpAll(_ platform: PlatformDescription, frames: inout FrameAllocator) -> FixedList<8, ReadySMMU> {
        // At most one per description, and the DTB's list holds 8: the append cannot fail.
        var ready = FixedList<8, ReadySMMU>()
        // A while loop over one copy of the list, slots read in place (the
        // index moves on first, so each `continue` goes to the next one).
        var smmus = platform.smmus
        var index = 0
        while index < smmus.count {
            let description = smmus[slot: index]
            index += 1
            Console.say(description.isCoherent ? "smmu: arm,smmu-v3 at %x + %x, dma-coherent\n"
                                               : "smmu: arm,smmu-v3 at %x + %x, not dma-coherent\n",
                        description.registers.base.raw, description.registers.size)
            let registers = MMIORegisterBlock(base: description.registers.base.raw)
            // IDR0 is at offset 0: one guarded load tells whether anything answers.
            guard Probe.read32(description.registers.base.raw) != nil else {
                Console.line("smmu: nothing answers at this address (external abort on its ID registers): skipped")
                continue
            }
            let features: SMMUFeatures
            do throws(SMMUProbeError) {
                features = try SMMUFeatures.probe(registers)
            } catch {
                Console.put("smmu: ID registers this driver cannot drive (")
                Console.putEntry(SMMUProbeError.names.utf8Start, error.nameIndex)
                Console.line("): skipped")
                continue
            }
            Board.printFeatures(features)
            do throws(BringUpError) {
                _ = ready.append(try enable(description, features, frames: &frames))
            } catch {
                Checks.expect(false, "SMMU bring-up (CR0ACK, queues, stream table, CFGI_ALL + TLBI + CMD_SYNC)")
                continue
            }
            Console.line("smmu: enabled with every StreamID invalid: incoming DMA aborts until a device is attached")
        }
        return ready
    }

    /// Brings one probed SMMU up: stage 2 shared with the P2M where it has
    /// S2P and walks coherently (the P2M's table writes are not cleaned to
    /// PoC), the stage-1 mirror otherwise.
    static func enable(_ description: SMMUDescription, _ features: SMMUFeatures,
                       frames: inout FrameAllocator) throws(BringUpError) -> ReadySMMU {
        let coherent = description.isCoherent && features.coherentAccess
        let mode = features.preferredMode(coherent: coherent)
        let smmu = try BoardSMMU.bringUp(registers: MMIORegisterBlock(base: description.registers.base.raw),
                                         memory: IdentityMemory(), cache: BoardCache(), allocator: &frames,
                                         configuration: SMMUConfiguration(dmaCoherent: coherent, mode: mode))
        return ReadySMMU(phandle: description.phandle, mode: mode, handle: BoardSMMUHandle(smmu))
    }
}

extension SMMUProbeError {
    /// For the console (no String interpolation in the image): entry
    /// `nameIndex` of this list (`Console.putEntry`), in case order.
    static let names: StaticString = """
        no AArch64 table format\0no translation stage\0no 4 KiB granule\0big-endian tables only\0\
        stall forced\0relative base addresses\0preset tables or queues\0queues too small
        """

    @_transparent
    var nameIndex: Int {
        switch self {
        case .noAArch64TableFormat: 0
        case .noTranslationStage: 1
        case .no4KGranule: 2
        case .bigEndianTablesOnly: 3
        case .stallForced: 4
        case .relativeBaseAddresses: 5
        case .presetTablesOrQueues: 6
        case .queuesTooSmall: 7
        }
    }
}
