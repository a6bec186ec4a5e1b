import Synchronization

/// One frame's metadata: 16 bytes, two atomic words (Xen's `struct page_info`
/// reduced to what this component needs; pKVM's `struct hyp_page` grown by
/// the owner and share state that seed 004's review asks for).
///
/// Each word changes only by compare-exchange of the whole word, so a reader
/// that holds no lock (the P2M's removal listener, a reference dropped after
/// a flush completes) never observes half of a transition. The two words are
/// independent: nothing needs both to change together (the xenheap GFN is
/// written under the P2M lock, ownership under the domain page lock).
public struct FrameEntry: ~Copyable {
    let state: Atomic<UInt64>
    @usableFromInline let typeInfo: Atomic<UInt64>

    init(state: FrameState, typeInfo: TypeInfo) {
        self.state = Atomic(state.raw)
        self.typeInfo = Atomic(typeInfo.raw)
    }
}
