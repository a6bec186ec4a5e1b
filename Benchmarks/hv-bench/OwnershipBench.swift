// Replaced by the Ownership benchmark.
func runOwnershipBenchmarks() {}
