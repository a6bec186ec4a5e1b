import AArch64

extension P2MConfiguration {
    /// The widest output any P2M here uses: its descriptors carry 48-bit output
    /// addresses (no FEAT_LPA), so a CPU or SMMU with 52 bits still gets 48.
    public static let widestOutputRange = PhysicalAddressRange.bits48
    /// 1 TiB of guest-physical space unless asked otherwise (KVM's default IPA size, too).
    public static let defaultIPABits = 40

    /// A domain's configuration from what the hardware reports, written once for
    /// every domain: the PA range is the narrowest of the CPU's PARange, every
    /// other walker of the same table (`sharedWith`: an SMMU's IDR5.OAS when
    /// the SMMU walks it) and `widestOutputRange`; the IPA space is
    /// `maximumIPABits`, or the PA range where that is narrower (an IPA wider
    /// than the PA range names memory that cannot exist: VTCR refuses it).
    public init(vmid: UInt16, cpu: CPUIDRegisters, maximumIPABits: Int = defaultIPABits,
                sharedWith otherWalker: PhysicalAddressRange = widestOutputRange) {
        let paRange = min(min(cpu.physicalAddressRange, otherWalker), Self.widestOutputRange)
        self.init(vmid: vmid, ipaBits: min(maximumIPABits, paRange.bits), paRange: paRange, vmidWidth: cpu.vmidWidth)
    }
}
