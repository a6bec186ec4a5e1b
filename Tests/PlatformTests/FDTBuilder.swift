import Platform

/// Builds small synthetic FDT blobs for the malformations real dumps cannot
/// show (nesting, token order). Layout follows the spec: header, reservation
/// map, structure block, strings block.
struct FDTBuilder {
    private(set) var structure: [UInt8] = []
    private(set) var strings: [UInt8] = []
    var reservations: [(UInt64, UInt64)] = []

    mutating func word(_ value: UInt32) {
        structure += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    private mutating func pad() { while structure.count % 4 != 0 { structure.append(0) } }

    mutating func begin(_ name: String) {
        word(0x1)
        structure += Array(name.utf8) + [0]
        pad()
    }

    mutating func end() { word(0x2) }
    mutating func nop() { word(0x4) }

    mutating func property(_ name: String, _ value: [UInt8]) {
        let nameOffset: Int
        if let existing = findString(name) {
            nameOffset = existing
        } else {
            nameOffset = strings.count
            strings += Array(name.utf8) + [0]
        }
        word(0x3)
        word(UInt32(value.count))
        word(UInt32(nameOffset))
        structure += value
        pad()
    }

    mutating func property(_ name: String, cells: [UInt32]) {
        property(name, cells.flatMap { [UInt8($0 >> 24), UInt8($0 >> 16 & 0xFF), UInt8($0 >> 8 & 0xFF), UInt8($0 & 0xFF)] })
    }

    mutating func property(_ name: String, string: String) {
        property(name, Array(string.utf8) + [0])
    }

    private func findString(_ name: String) -> Int? {
        let bytes = Array(name.utf8) + [0]
        var i = 0
        while i + bytes.count <= strings.count {
            if Array(strings[i..<i + bytes.count]) == bytes && (i == 0 || strings[i - 1] == 0) { return i }
            i += 1
        }
        return nil
    }

    /// The blob; `endToken: false` leaves out FDT_END.
    func blob(endToken: Bool = true) -> [UInt8] {
        var structBlock = structure
        if endToken { structBlock += [0, 0, 0, 9] }
        var map: [UInt8] = []
        for (address, size) in reservations + [(0, 0)] {
            var entry = [UInt8](repeating: 0, count: 16)
            entry.setBE64(address, at: 0)
            entry.setBE64(size, at: 8)
            map += entry
        }
        let reservationOffset = 40
        let structOffset = reservationOffset + map.count
        let stringsOffset = structOffset + structBlock.count
        let total = stringsOffset + strings.count
        var header = [UInt8](repeating: 0, count: 40)
        header.setBE32(0xD00D_FEED, at: 0)
        header.setBE32(UInt32(total), at: 4)
        header.setBE32(UInt32(structOffset), at: 8)
        header.setBE32(UInt32(stringsOffset), at: 12)
        header.setBE32(UInt32(reservationOffset), at: 16)
        header.setBE32(17, at: 20)
        header.setBE32(16, at: 24)
        header.setBE32(0, at: 28)
        header.setBE32(UInt32(strings.count), at: 32)
        header.setBE32(UInt32(structBlock.count), at: 36)
        return header + map + structBlock + strings
    }

    /// A minimal valid tree: root with cells, one memory node.
    static func minimal() -> FDTBuilder {
        var b = FDTBuilder()
        b.begin("")
        b.property("#address-cells", cells: [2])
        b.property("#size-cells", cells: [1])
        b.begin("memory@40000000")
        b.property("device_type", string: "memory")
        b.property("reg", cells: [0, 0x4000_0000, 0x1000_0000])
        b.end()
        b.end()
        return b
    }
}
