/// Register operands (Xt) of the stage-2 TLB maintenance instructions, 4 KiB granule
/// (Arm ARM system instruction descriptions "TLBI IPAS2E1IS" and "TLBI RIPAS2E1IS"; the range form needs
/// FEAT_TLBIRANGE). The board's `TLBMaintenance` writes these to Xt; the choice
/// between them is made by the flush (per page up to a threshold, whole VMID above).
public enum TLBIOperand {
    /// IPAS2E1IS: IPA[47:12] in Xt[35:0]; TTL [47:44] = 0 (no level hint); NS [63] = 0.
    static let ipaMask: UInt64 = (1 << 36) - 1
    /// RIPAS2E1IS fields.
    @usableFromInline static let baseAddressMask: UInt64 = (1 << 37) - 1
    @usableFromInline static let numShift: UInt64 = 39
    @usableFromInline static let scaleShift: UInt64 = 44
    @usableFromInline static let granuleShift: UInt64 = 46
    /// TG = 0b01: 4 KiB translation granule.
    @usableFromInline static let granule4K: UInt64 = 0b01
    @usableFromInline static let maxNum: UInt64 = 31
    @usableFromInline static let maxScale: UInt64 = 3

    /// Operand of `TLBI IPAS2E1IS` for one page.
    public static func page(_ gfn: GFN) -> UInt64 { gfn.raw & ipaMask }

    /// Operand of `TLBI RIPAS2E1IS` for (num + 1) << (5 * scale + 1) pages from `base`.
    @_transparent public static func range(_ base: GFN, scale: UInt8, num: UInt8) -> UInt64 {
        precondition(UInt64(scale) <= maxScale && UInt64(num) <= maxNum, "SCALE is 2 bits, NUM 5")
        return Self.granule4K << granuleShift | UInt64(scale) << scaleShift | UInt64(num) << numShift
            | base.raw & baseAddressMask
    }

    /// Pages one range operation covers.
    public static func rangePages(scale: UInt8, num: UInt8) -> UInt64 {
        (UInt64(num) + 1) << (5 * UInt64(scale) + 1)
    }

    /// The most pages a decomposition can cover: one single page plus NUM = 31 at each SCALE.
    public static let maxRangePages: UInt64 = (1 << 21) - 1

    /// Cover [gfn, gfn+pages) exactly with at most five operations: one single-page
    /// operation if the count is odd, then at most one range per SCALE (the count's
    /// binary digits, five at a time). Returns false, issuing nothing, when the count
    /// exceeds `maxRangePages` (invalidate the VMID instead).
    public static func forEachOperation(_ gfn: GFN, pages: UInt64, _ body: (TLBIStage2Operation) -> Void) -> Bool {
        guard pages != 0, pages <= maxRangePages else { return false }
        var base = gfn.raw
        var remaining = pages
        if remaining & 1 != 0 {
            body(.page(page(GFN(raw: base))))
            base += 1
            remaining -= 1
        }
        // remaining < 2^21 and its bits are taken five at a time, so the
        // shift, the NUM - 1 and the subtraction cannot wrap.
        var scale: UInt64 = 0
        while remaining != 0 {
            let shift = 5 &* scale &+ 1
            let num = (remaining &>> shift) & maxNum
            if num != 0 {
                body(.range(range(GFN(raw: base), scale: UInt8(truncatingIfNeeded: scale),
                                  num: UInt8(truncatingIfNeeded: num &- 1))))
                base += num &<< shift
                remaining &-= num &<< shift
            }
            scale &+= 1
        }
        return true
    }
}

/// One stage-2 invalidation: which instruction, and its Xt.
public enum TLBIStage2Operation: Equatable, Sendable {
    /// `TLBI IPAS2E1IS, Xt`
    case page(UInt64)
    /// `TLBI RIPAS2E1IS, Xt`
    case range(UInt64)
}
