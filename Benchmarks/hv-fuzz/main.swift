// The device-tree fuzzer's long run: `swift run -c release hv-fuzz [executions] [seed]`
// (defaults 1,000,000 and 1), seeded with Tests/PlatformTests/DTBs/*.dtb.
// Prints progress every 100,000 executions and a summary; exits 1 when an
// input broke an invariant or took longer than a second (the index replays it).
// An execution that never returns is caught by FDTFuzzWatchdog after 10 s
// (HV_FUZZ_HANG_LIMIT_MS overrides); HV_FUZZ_SPIN_AT=<index> makes that
// execution spin forever, to show the watchdog reporting it.
import Foundation
import FDTFuzzing

let arguments = CommandLine.arguments.dropFirst()
let executions = arguments.first.flatMap { UInt64($0) } ?? 1_000_000
let seed = arguments.dropFirst().first.flatMap { UInt64($0) } ?? 1
let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../Tests/PlatformTests/DTBs").standardized
let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path))?.filter { $0.hasSuffix(".dtb") }.sorted() ?? []
let seeds = names.compactMap { try? [UInt8](Data(contentsOf: directory.appendingPathComponent($0))) }
guard !seeds.isEmpty else {
    print("hv-fuzz: no seed DTBs in \(directory.path)")
    exit(2)
}
print("hv-fuzz: \(executions) executions, seed \(seed), \(seeds.count) seed blobs from \(directory.path)")

let fuzzer = FDTFuzzer(seeds: seeds, seed: seed)
let clock = ContinuousClock()
let start = clock.now
var stages: [FDTFuzzTarget.Stage: Int] = [:]
var reasons: [String: Int] = [:]
var findings = 0
var slowest: Duration = .zero
let environment = ProcessInfo.processInfo.environment
let hangLimit = Duration.milliseconds(environment["HV_FUZZ_HANG_LIMIT_MS"].flatMap { Int($0) } ?? 10_000)
let spinAt = environment["HV_FUZZ_SPIN_AT"].flatMap { UInt64($0) }
let watchdog = FDTFuzzWatchdog(limit: hangLimit) { index, running in
    print("hv-fuzz: execution \(index) (seed \(seed)) still running after \(running): a hang (replay with input(at: \(index)))")
    exit(1)
}
for index in 0..<executions {
    let input = fuzzer.input(at: index)
    let began = clock.now
    watchdog.begin(index)
    if index == spinAt { FDTFuzzTarget.spinForever() }
    let outcome = FDTFuzzTarget.execute(input)
    watchdog.end()
    let took = clock.now - began
    slowest = max(slowest, took)
    stages[outcome.stage, default: 0] += 1
    if let reason = outcome.reason { reasons[reason, default: 0] += 1 }
    if !outcome.violations.isEmpty || took > .seconds(1) {
        findings += 1
        print("hv-fuzz: execution \(index) (seed \(seed)): \(outcome.violations) in \(took)")
    }
    if (index + 1) % 100_000 == 0 { print("hv-fuzz: \(index + 1) executions, \(clock.now - start)") }
}
watchdog.stop()
let elapsed = clock.now - start
print("hv-fuzz: \(executions) executions in \(elapsed), slowest \(slowest), \(findings) findings")
for stage in [FDTFuzzTarget.Stage.tree, .description, .parange, .allocator, .accepted] {
    print("  stopped at \(stage.rawValue): \(stages[stage, default: 0])")
}
print("  distinct rejection reasons: \(reasons.count)")
for (reason, count) in reasons.sorted(by: { $0.value > $1.value }) { print("    \(count)\t\(reason)") }
exit(findings == 0 ? 0 : 1)
