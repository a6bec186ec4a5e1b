// Release-mode benchmarks: `swift run -c release hv-bench`.
print("hv-bench: no workloads yet")
