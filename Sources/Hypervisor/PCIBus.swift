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
    static func ecam(_ bridge: PCIHostBridge) -> PCIECAM<MMIORegisterBlock> {
        PCIECAM(registers: MMIORegisterBlock(base: bridge.ecam.base.raw), bridge: bridge)
    }

    static func enumerate(_ platform: PlatformDescription) -> [PCIDevice] {
        guard let bridge = platform.pciHostBridge else {
            Console.line("pcie: the DTB describes no pci-host-ecam-generic bridge: the PCI checks do not apply")
            return []
        }
        Console.say("pcie: ECAM %x + %x, buses %d-%d",
                    bridge.ecam.base.raw, bridge.ecam.size, UInt64(bridge.firstBus), UInt64(bridge.lastBus))
        if let window = bridge.memory32Window {
            Console.say(", 32-bit window %x + %x", window.cpuAddress.raw, window.size)
        }
        Console.line("")
        var devices: [PCIDevice] = []
        for function in ecam(bridge).functions {
            let target = bridge.iommuTarget(forRequesterID: function.address.requesterID)
            devices.append(PCIDevice(function: function, streamID: target?.streamID, iommuPhandle: target?.iommu))
            Console.put("pci ")
            Banner.bdf(function.address)
            Console.put(" ")
            Console.hexDigits(UInt64(function.vendorID), 4)
            Console.put(":")
            Console.hexDigits(UInt64(function.deviceID), 4)
            Console.put(" class ")
            Console.hexDigits(UInt64(function.classCode), 6)
            if let sid = target?.streamID {
                Console.say(" streamid %x", UInt64(sid))
            } else {
                Console.put(" (no iommu-map entry)")
            }
            Console.line("")
        }
        return devices
    }
}
