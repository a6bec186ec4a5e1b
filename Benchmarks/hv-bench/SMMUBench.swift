// Replaced by the SMMU benchmark.
func runSMMUBenchmarks() {}
