// Replaced by the P2M benchmark.
func runP2MBenchmarks() {}
