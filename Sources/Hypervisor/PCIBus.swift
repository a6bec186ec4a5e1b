import AArch64
import Platform

/// PCI functions on the host bridge the DTB describes, with the StreamID
/// each one's requester ID maps to through the bridge's `iommu-map`.
struct PCIDevice {
    let function: PCIFunction
    let streamID: UInt32?
    let iommuPhandle: UInt32?
}

enum PCIBus {
    /// The bridge's ECAM from the three fields it needs (`PCIECAM(registers:bridge:)`
    /// takes the whole 640-byte bridge as an owned argument), inlined at its two
    /// callers, as `enumerate` is at its one (out of line each cost a call and a frame).
    @_transparent
    static func ecam(_ bridge: borrowing PCIHostBridge) -> PCIECAM<MMIORegisterBlock> {
        PCIECAM(registers: MMIORegisterBlock(base: bridge.ecam.base.raw), firstBus: bridge.firstBus,
                lastBus: bridge.lastBus)
    }

    /// What the board's checks use of the enumeration: how many functions
    /// answered, and the first QEMU edu device among them.
    struct Scan {
        var count = 0
        var edu: PCIDevice?
    }

    /// Prints every function on the bus the DTB's bridge decodes.
    @_transparent
    static func enumerate(_ platform: PlatformDescription) -> Scan {
        var scan = Scan()
        guard let bridge = platform.pciHostBridge else {
            Console.line("pcie: the DTB describes no pci-host-ecam-generic bridge: the PCI checks do not apply")
            return scan
        }
        Console.say("pcie: ECAM %x + %x, buses %d-%d",
                    bridge.ecam.base.raw, bridge.ecam.size, UInt64(bridge.firstBus), UInt64(bridge.lastBus))
        if let window = bridge.memory32Window {
            Console.say(", 32-bit window %x + %x", window.cpuAddress.raw, window.size)
        }
        Console.line("")
        for function in ecam(bridge).functions {
            let target = bridge.iommuTarget(forRequesterID: function.address.requesterID)
            scan.count += 1
            if scan.edu == nil && function.vendorID == EduDevice.vendorID && function.deviceID == EduDevice.deviceID {
                scan.edu = PCIDevice(function: function, streamID: target?.streamID, iommuPhandle: target?.iommu)
            }
            let address = function.address
            Console.say("pci %2:%2.%d ", UInt64(address.bus), UInt64(address.device), UInt64(address.function))
            Console.say("%4:%4 class %6", UInt64(function.vendorID), UInt64(function.deviceID),
                        UInt64(function.classCode))
            if let sid = target?.streamID {
                Console.say(" streamid %x\n", UInt64(sid))
            } else {
                Console.line(" (no iommu-map entry)")
            }
        }
        return scan
    }
}
