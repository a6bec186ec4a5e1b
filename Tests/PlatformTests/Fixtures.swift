import Foundation
import XCTest
@testable import Platform

/// DTB fixtures, loaded relative to this file (not as SwiftPM resources) so
/// the same path works from `swift test` in any worktree.
enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("DTBs")

    /// Real dumps from QEMU 7.2 (`dumpdtb=`), see DTBs/README.md.
    static let qemuDumps = [
        "virt-m512m-smp1.dtb", "virt-m1g-smp1.dtb", "virt-m2g-smp1.dtb",
        "virt-m1g-smp2.dtb", "virt-m2g-smp2.dtb", "virt-gicv3-m1g-smp2.dtb",
    ]
    static let virt1G = "virt-m1g-smp1.dtb"
    static let sparse = "sparse-noncoherent.dtb"

    static func bytes(_ name: String, file: StaticString = #filePath, line: UInt = #line) -> [UInt8] {
        let url = directory.appendingPathComponent(name)
        guard let data = try? Data(contentsOf: url) else {
            XCTFail("missing fixture \(url.path)", file: file, line: line)
            return []
        }
        return [UInt8](data)
    }
}

/// Runs `body` over a parsed tree of `bytes`; the buffer lives for the call.
func withTree<R>(_ bytes: [UInt8], _ body: (FlattenedDeviceTree) throws -> R) throws -> R {
    try bytes.withUnsafeBytes { raw in try body(try FlattenedDeviceTree(raw)) }
}

/// Parses `bytes` and returns the error, or nil if it parsed.
func parseError(_ bytes: [UInt8]) -> FDTError? {
    bytes.withUnsafeBytes { raw -> FDTError? in
        do throws(FDTError) {
            let tree = try FlattenedDeviceTree(raw)
            _ = try PlatformDescription(tree)
            return nil
        } catch {
            return error
        }
    }
}

extension Array where Element == UInt8 {
    func be32(at offset: Int) -> UInt32 {
        UInt32(self[offset]) << 24 | UInt32(self[offset + 1]) << 16 | UInt32(self[offset + 2]) << 8 | UInt32(self[offset + 3])
    }
    mutating func setBE32(_ value: UInt32, at offset: Int) {
        self[offset] = UInt8(truncatingIfNeeded: value >> 24)
        self[offset + 1] = UInt8(truncatingIfNeeded: value >> 16)
        self[offset + 2] = UInt8(truncatingIfNeeded: value >> 8)
        self[offset + 3] = UInt8(truncatingIfNeeded: value)
    }
    func be64(at offset: Int) -> UInt64 { UInt64(be32(at: offset)) << 32 | UInt64(be32(at: offset + 4)) }
    mutating func setBE64(_ value: UInt64, at offset: Int) {
        setBE32(UInt32(truncatingIfNeeded: value >> 32), at: offset)
        setBE32(UInt32(truncatingIfNeeded: value), at: offset + 4)
    }
}
