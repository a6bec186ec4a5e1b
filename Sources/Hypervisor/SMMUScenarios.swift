import AArch64
import Platform

enum Board {
    static func runSMMUScenarios(platform: PlatformDescription, functions: [PCIDevice], frames: inout FrameAllocator) {
        Checks.expect(!platform.smmus.isEmpty, "the DTB describes an arm,smmu-v3")
        for smmu in platform.smmus {
            Console.put("smmu: arm,smmu-v3 at ")
            Console.hex(smmu.registers.base.raw)
            Console.put(" + ")
            Console.hex(smmu.registers.size)
            Console.line(smmu.isCoherent ? ", dma-coherent" : ", not coherent")
        }
    }
}
