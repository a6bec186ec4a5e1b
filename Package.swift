// swift-tools-version: 6.0
//
// Host build only: the portable modules and their XCTest targets, plus the
// release-mode benchmark. The board-only `Hypervisor` module (Sources/Hypervisor)
// is deliberately not declared here; the Makefile compiles it, with the same
// portable sources, in Embedded Swift for aarch64-none-none-elf.
import PackageDescription

let crossModule: [SwiftSetting] = [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]

let package = Package(
    name: "HypervisorMemoryProtection",
    products: [
        .library(name: "AArch64", targets: ["AArch64"]),
        .library(name: "Translation", targets: ["Translation"]),
        .library(name: "Ownership", targets: ["Ownership"]),
        .library(name: "SMMUv3", targets: ["SMMUv3"]),
        .library(name: "Platform", targets: ["Platform"]),
        .library(name: "HostExits", targets: ["HostExits"]),
    ],
    targets: [
        // Cross-module optimisation lets the release benchmark specialise the generic
        // engine across module boundaries, as the board build's single module does.
        .target(name: "AArch64", swiftSettings: crossModule),
        .target(name: "Translation", dependencies: ["AArch64"], swiftSettings: crossModule),
        .target(name: "Ownership", dependencies: ["AArch64", "Translation"], swiftSettings: crossModule),
        .target(name: "SMMUv3", dependencies: ["AArch64", "Translation"]),
        .target(name: "Platform", dependencies: ["AArch64"]),
        // What the hypervisor decides for each exit of its deprivileged host
        // (PSCI, stage-2 aborts, the control device); the board only moves registers.
        .target(name: "HostExits", dependencies: ["AArch64", "Translation", "Ownership", "Platform"]),
        // Host-only fakes of the hardware protocols (RAM, table pools, TLB, cache,
        // IOMMU) shared by the test targets and the benchmark; never built for the board.
        .target(name: "HostFakes", dependencies: ["AArch64", "Translation"], path: "Tests/HostFakes",
                swiftSettings: crossModule),
        // Host-only: the device-tree mutation fuzzer, shared by its XCTest run and
        // the long-run executable.
        .target(name: "FDTFuzzing", dependencies: ["AArch64", "Platform", "HostFakes"], path: "Tests/FDTFuzzing"),
        .executableTarget(name: "hv-fuzz", dependencies: ["FDTFuzzing"], path: "Benchmarks/hv-fuzz"),
        .executableTarget(
            name: "hv-bench",
            dependencies: ["AArch64", "Translation", "Ownership", "SMMUv3", "Platform", "HostFakes"],
            path: "Benchmarks/hv-bench"),
        // Runs the platform layer over a directory of real boards' device
        // trees (scripts/dtb-corpus.sh, part of `make test`).
        .executableTarget(name: "hv-dtb-corpus", dependencies: ["AArch64", "Platform"], path: "Tools/hv-dtb-corpus"),
        .testTarget(name: "AArch64Tests", dependencies: ["AArch64"]),
        .testTarget(name: "TranslationTests", dependencies: ["AArch64", "Translation", "HostFakes"]),
        .testTarget(name: "OwnershipTests", dependencies: ["AArch64", "Translation", "Ownership", "HostFakes"]),
        .testTarget(name: "SMMUv3Tests", dependencies: ["AArch64", "Translation", "SMMUv3", "HostFakes"]),
        .testTarget(name: "PlatformTests", dependencies: ["AArch64", "Platform", "HostFakes", "FDTFuzzing"],
                    exclude: ["DTBs"]),
        .testTarget(name: "HostExitsTests", dependencies: ["AArch64", "Translation", "Ownership", "Platform", "HostExits", "HostFakes"]),
    ]
)
