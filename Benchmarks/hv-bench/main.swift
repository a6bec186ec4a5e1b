// Release-mode benchmarks:
//   swift run -c release hv-bench [--hafnium FILE] [p2m|ownership|smmu]... [a|b|c|d]...
// Each section lives in its own file; with no section every section runs. Letters
// pick the P2M workloads that hafnium-mm-bench (/work/shared/tools/hafnium-mm-bench)
// also runs; `--hafnium FILE` reads that bench's output and adds the ratio column.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

var args = Array(CommandLine.arguments.dropFirst())
var hafnium: [String: Double] = [:]
if let i = args.firstIndex(of: "--hafnium") {
    guard i + 1 < args.count else { print("hv-bench: --hafnium needs a file"); exit(2) }
    guard let parsed = readHafniumResults(args[i + 1]) else {
        print("hv-bench: cannot read " + args[i + 1])
        exit(2)
    }
    hafnium = parsed
    args.removeSubrange(i...(i + 1))
}
let letters = Set(args.filter { $0.count == 1 })
let sections = args.filter { $0.count != 1 }
func wants(_ name: String) -> Bool { sections.isEmpty || sections.contains(name) }
if wants("p2m") { runP2MBenchmarks(only: letters, hafnium: hafnium) }
if wants("ownership") { runOwnershipBenchmarks() }
if wants("smmu") { runSMMUBenchmarks() }

/// hafnium-mm-bench's result lines, e.g.
/// `c) map 2M x 512   calls=512 pages=262144 best_ns=38480 ns/page=0.1468 ns/call=75.2 table_pages=5`,
/// keyed "c map" (`b') map+unmap 1G pair x10000 ...` is keyed "b' map+unmap"). When a file holds several rounds, the minimum of each row.
func readHafniumResults(_ path: String) -> [String: Double]? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var results: [String: Double] = [:]
    var buffer = [CChar](repeating: 0, count: 1024)
    while fgets(&buffer, Int32(buffer.count), file) != nil {
        let line = String(cString: buffer)
        let words = line.split(separator: " ")
        // A letter, or a letter and a prime (b'), then ")".
        guard words.count > 2, words[0].count == 2 || words[0].count == 3, words[0].hasSuffix(")"),
              let field = words.first(where: { $0.hasPrefix("ns/call=") }),
              let value = Double(field.dropFirst("ns/call=".count)) else { continue }
        let key = String(words[0].dropLast()) + " " + words[1]
        results[key] = min(results[key] ?? .infinity, value)
    }
    return results
}
