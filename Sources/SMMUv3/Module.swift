/// Module SMMUv3: see DESIGN.md.
import AArch64
