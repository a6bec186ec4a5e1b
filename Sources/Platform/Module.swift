/// Module Platform: see DESIGN.md.
import AArch64
