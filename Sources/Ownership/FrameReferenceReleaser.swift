import AArch64
import Translation

/// The P2M flush batch's custodian of page references (seed 000, XSA-346).
///
/// A reference handed over with `hold` stays counted in the frame's
/// `references` until the batch's commit has completed every CPU and IOMMU
/// invalidation; only then does `releaseHeld` drop it. A frame whose last
/// reference goes that way, and which its owner no longer holds allocated, is
/// dead: nobody can take a reference to it any more (every path that takes
/// one requires a live owner reference or an allocated frame) and it is
/// collected in `dead` for `PageOwnership` to clean and return to the host,
/// which must happen outside the P2M (it needs the cache maintenance and the
/// domain page lock).
public struct FrameReferenceReleaser: PageReferenceReleaser {
    /// nil for a batch of a P2M without a frame table (`init()`).
    let frames: FrameTable?
    /// References held until the commit, one run of consecutive frames per
    /// two words: the first frame's number, then the run's length. Plain
    /// words, not `(first: MFN, count: UInt64)` pairs: the board's [UInt64]
    /// already carries the array machinery a tuple element type brought again.
    private(set) var heldWords = [UInt64]()
    /// Frames whose last reference was dropped at a commit, not yet returned.
    public internal(set) var dead = [MFN]()

    /// Allocates nothing: most batches (one per operation) never hold a
    /// reference, and the first `hold` reserves a range chunk's worth.
    public init(frames: FrameTable) {
        self.frames = frames
    }

    /// For a P2M without a frame table (the board's device and host stage-2
    /// P2Ms share the ownership P2M's type, one copy of the table engine):
    /// nothing it maps holds a page reference, so holding one is a programming
    /// error (the reference would leak) and traps, as `NoHeldReferences` does.
    public init() {
        self.frames = nil
    }

    /// Keeps `count` references (one per frame from `mfn`) until the commit.
    /// They are already counted in the frames; holding only defers their drop.
    /// A run that continues the last one extends it (a range move holds its
    /// chunk's consecutive frames as one run).
    public mutating func hold(_ mfn: MFN, count: UInt64) {
        precondition(frames != nil, "a FrameReferenceReleaser without a frame table cannot hold page references")
        let n = heldWords.count
        if n > 0 {
            let first = heldWords[n - 2], length = heldWords[n - 1]
            if first &+ length == mfn.raw, length <= UInt64.max - count {
                heldWords[n - 1] = length + count
                return
            }
        }
        if heldWords.capacity == 0 { heldWords.reserveCapacity(2 * GmfnRangeMove.chunkFrames) }
        heldWords.append(mfn.raw)
        heldWords.append(count)
    }

    /// The held runs (for inspection; the board never builds this list).
    public var held: [(first: MFN, count: UInt64)] {
        var runs: [(first: MFN, count: UInt64)] = []
        var r = 0
        while r < heldWords.count {
            runs.append((MFN(raw: heldWords[r]), heldWords[r + 1]))
            r += 2
        }
        return runs
    }

    public mutating func releaseHeld() {
        // Without a frame table nothing was held (`hold` traps).
        guard let frames else { return }
        var r = 0
        while r < heldWords.count {
            let first = MFN(raw: heldWords[r])
            for i in 0..<heldWords[r + 1] {
                let mfn = first.adding(i)
                guard let index = frames.index(of: mfn) else { continue }
                let (_, now) = frames.updateState(at: index) { (s: FrameState) -> FrameState in
                    precondition(s.references > 0, "held reference missing from the frame")
                    var n = s
                    n.references -= 1
                    return n
                }
                // A host frame's held reference only kept it from being handed
                // on; dropping it frees nothing.
                if now.references == 0 && !now.isAllocated && !now.isOwned(by: .host) { dead.append(mfn) }
            }
            r += 2
        }
        // A fresh empty list, not `removeAll(keepingCapacity:)`: that brought its
        // own `replaceSubrange` copy onto the board. The next `hold` reserves a
        // chunk's worth again.
        heldWords = [UInt64]()
    }

    /// `FlushBatch.absorb`: a failed commit's references (and any dead frames
    /// not yet returned) move to the batch that will retry it.
    public mutating func takeHeld(from other: inout FrameReferenceReleaser) {
        // Element by element: a rare path (a failed commit), and the image
        // then needs no append(contentsOf:) specialised per element type.
        for r in 0..<other.heldWords.count { heldWords.append(other.heldWords[r]) }
        other.heldWords = [UInt64]()
        for i in 0..<other.dead.count { dead.append(other.dead[i]) }
        other.dead = [MFN]()
    }
}
