// Release-mode benchmarks: `swift run -c release hv-bench [p2m|ownership|smmu]...`
// Each section lives in its own file; with no argument every section runs.
let args = CommandLine.arguments.dropFirst()
func wants(_ name: String) -> Bool { args.isEmpty || args.contains(name) }
if wants("p2m") { runP2MBenchmarks() }
if wants("ownership") { runOwnershipBenchmarks() }
if wants("smmu") { runSMMUBenchmarks() }
