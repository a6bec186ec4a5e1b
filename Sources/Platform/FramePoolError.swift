import AArch64

/// Why a `FramePool` refused; the pool is unchanged after each.
public enum FramePoolError: Error, Equatable, Sendable {
    /// No aligned run of `run` free frames; `available` frames are free in all.
    case exhausted(run: Int, available: Int)
    /// Runs are powers of two from 1 to `FramePool.runAlignment`.
    case unsupportedRun(Int)
    /// The frame is not one of this pool's.
    case notInPool(MFN)
    /// The frame is the pool's but is not handed out.
    case doubleFree(MFN)
}
