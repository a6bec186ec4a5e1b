/// Module Ownership: see DESIGN.md.
import AArch64
