// hv-dtb-corpus: runs the platform layer on device tree blobs and prints, per
// blob, what it found in a line format that scripts/dtb-corpus.py prints too
// from its own reading (python3-libfdt), so the two can be compared line by
// line.
//
//   hv-dtb-corpus ROOT FILE...     FILE relative to ROOT
import AArch64
import Foundation
import Platform

func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
func hex(_ v: UInt32?) -> String { v.map { "0x" + String($0, radix: 16) } ?? "-" }

func path(_ tree: FlattenedDeviceTree, _ offset: Int?) -> String {
    guard let offset, var node = tree.nodes.first(where: { $0.offset == offset }) else { return "-" }
    var parts: [String] = []
    while let parent = tree.parent(of: node) {
        parts.append(String(decoding: tree.name(of: node), as: UTF8.self))
        node = parent
    }
    return "/" + parts.reversed().joined(separator: "/")
}

func describe(_ tree: FlattenedDeviceTree) throws(FDTError) -> [String] {
    let p = try PlatformDescription(tree)
    var out: [String] = []
    for bank in p.memoryBanks { out.append("memory \(hex(bank.base.raw)) \(hex(bank.size))") }
    for r in p.memoryReservations { out.append("memreserve \(hex(r.base.raw)) \(hex(r.size))") }
    for r in p.reservedMemory {
        out.append("reserved \(hex(r.range.base.raw)) \(hex(r.range.size)) nomap=\(r.noMap ? 1 : 0) \(path(tree, r.node))")
    }
    if let c = p.console {
        let kind: String
        switch c.kind {
        case .pl011: kind = "pl011"
        case .ns16550(let l): kind = "ns16550 shift=\(l.regShift) width=\(l.ioWidth)"
        case .unsupported: kind = "unsupported"
        }
        let source = c.source == .stdoutPath ? "stdout-path" : "serial0"
        out.append("console \(path(tree, c.node)) \(hex(c.registers.base.raw)) \(hex(c.registers.size)) \(kind) \(source)")
    } else {
        out.append("console none")
    }
    for s in p.smmus {
        let i = s.interrupts
        out.append("smmu \(path(tree, s.node)) \(hex(s.registers.base.raw)) \(hex(s.registers.size))"
                   + " coherent=\(s.isCoherent ? 1 : 0) msi-parent=\(hex(s.msiParent))"
                   + " eventq=\(hex(i.eventQueue)) priq=\(hex(i.priorityQueue))"
                   + " cmdq-sync=\(hex(i.commandSync)) gerror=\(hex(i.globalError))")
    }
    for node in tree.pciHostBridgeNodes {
        let b = try PCIHostBridgeNode(tree, node)
        let name = path(tree, b.node)
        out.append("pci \(name) ecam-generic=\(b.isECAMGeneric ? 1 : 0) msi-parent=\(hex(b.msiParent))")
        for w in b.windows {
            out.append("pci-window \(name) space=\(w.space.rawValue) pref=\(w.isPrefetchable ? 1 : 0)"
                       + " \(hex(w.pciAddress)) \(hex(w.cpuAddress.raw)) \(hex(w.size))")
        }
        for e in b.iommuMap {
            out.append("pci-iommu-map \(name) \(hex(e.ridBase)) \(hex(e.iommu)) \(hex(e.sidBase)) \(hex(e.length))")
        }
        for e in b.msiMap {
            out.append("pci-msi-map \(name) \(hex(e.ridBase)) \(hex(e.controller)) \(hex(e.msiBase)) \(hex(e.length))")
        }
    }
    return out
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write("usage: hv-dtb-corpus ROOT FILE...\n".data(using: .utf8)!)
    exit(2)
}
let root = URL(fileURLWithPath: arguments[1])
var output = ""
for file in arguments.dropFirst(2) {
    output += "== \(file)\n"
    guard let data = try? Data(contentsOf: root.appendingPathComponent(file)) else {
        output += "unreadable\n"
        continue
    }
    let bytes = [UInt8](data)
    let lines: [String] = bytes.withUnsafeBytes { raw in
        let tree: FlattenedDeviceTree
        do throws(FDTError) {
            tree = try FlattenedDeviceTree(raw)
        } catch {
            return ["error \(error) - -"]
        }
        do throws(FDTError) {
            return try describe(tree)
        } catch {
            let property = error.property.map { "\($0)" } ?? "-"
            return ["error \(error) \(path(tree, error.node)) \(property)"]
        }
    }
    for line in lines { output += line + "\n" }
}
FileHandle.standardOutput.write(output.data(using: .utf8)!)
