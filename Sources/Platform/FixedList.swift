/// A list with a capacity fixed at compile time, stored inline.
///
/// Everything the platform layer hands back (memory banks, SMMUs, windows,
/// free frame ranges) has a small bound that firmware never exceeds on the
/// machines we target, so no heap is needed at boot. Running out of room is
/// reported by `append` returning `false`; callers turn that into their own
/// typed error, never a trap.
public struct FixedList<let capacity: Int, Element>: RandomAccessCollection {
    @usableFromInline var storage: InlineArray<capacity, Element?>
    public private(set) var count: Int

    public init() {
        storage = InlineArray(repeating: nil)
        count = 0
    }

    @inline(__always) public var startIndex: Int { 0 }
    @inline(__always) public var endIndex: Int { count }
    @inline(__always) public var isFull: Bool { count == capacity }
    @inline(__always) public func index(after i: Int) -> Int { i + 1 }
    @inline(__always) public func index(before i: Int) -> Int { i - 1 }
    @inline(__always) public func formIndex(after i: inout Int) { i += 1 }

    /// A `for` loop's iterator: reads each slot in place (`next` has the
    /// iterator inout), where the standard library's `IndexingIterator` went
    /// through the subscript getter, which copies the whole inline storage to
    /// read one element; one small `next` per element type in the image.
    public struct Iterator: IteratorProtocol {
        @usableFromInline let list: FixedList
        @usableFromInline var position = 0

        @inline(__always) init(_ list: FixedList) { self.list = list }

        public mutating func next() -> Element? {
            guard position < list.count else { return nil }
            position += 1
            // Read in place: `self` is inout here, so nothing is copied.
            // 0 <= position - 1 < count <= capacity: in bounds.
            return list.storage[unchecked: position - 1].unsafelyUnwrapped
        }
    }

    @inline(__always) public func makeIterator() -> Iterator { Iterator(self) }

    public subscript(index: Int) -> Element {
        _read {
            precondition(index >= 0 && index < count, "FixedList index out of range")
            // Slots below `count` always hold an element (the index check above).
            // `unchecked`: 0 <= index < count <= capacity was just checked, so
            // the InlineArray's own bounds check could never fail.
            yield storage[unchecked: index].unsafelyUnwrapped
        }
        set {
            precondition(index >= 0 && index < count, "FixedList index out of range")
            storage[unchecked: index] = newValue
        }
    }

    /// The element at `index`, read in place, for a list held in a `var` or
    /// `inout`. The plain subscript takes the list as a value, and reading one
    /// slot of a value copies the whole inline storage first (a memcpy of up
    /// to 3 KiB per read on the board); this accessor has the list's address.
    public subscript(slot index: Int) -> Element {
        mutating _read {
            precondition(index >= 0 && index < count, "FixedList index out of range")
            // 0 <= index < count <= capacity, as in the plain subscript.
            yield storage[unchecked: index].unsafelyUnwrapped
        }
    }

    /// Appends `element`; returns `false` (and changes nothing) when full.
    @discardableResult
    public mutating func append(_ element: Element) -> Bool {
        guard count < capacity else { return false }
        // 0 <= count < capacity: in bounds.
        storage[unchecked: count] = element
        count += 1
        return true
    }

    /// Inserts `element` before `index`, shifting the tail; `false` when full.
    @discardableResult
    public mutating func insert(_ element: Element, at index: Int) -> Bool {
        precondition(index >= 0 && index <= count, "FixedList insertion index out of range")
        guard count < capacity else { return false }
        // Every slot touched is in 0...count, and count < capacity.
        var i = count
        while i > index {
            storage[unchecked: i] = storage[unchecked: i - 1]
            i -= 1
        }
        storage[unchecked: index] = element
        count += 1
        return true
    }

    /// Removes the element at `index`, shifting the tail down.
    public mutating func remove(at index: Int) {
        precondition(index >= 0 && index < count, "FixedList index out of range")
        // Every slot touched is in index..<count, inside the capacity.
        var i = index
        while i + 1 < count {
            storage[unchecked: i] = storage[unchecked: i + 1]
            i += 1
        }
        count -= 1
        storage[unchecked: count] = nil
    }

    public mutating func removeAll() {
        while count > 0 {
            count -= 1
            storage[count] = nil
        }
    }
}

extension FixedList: Sendable where Element: Sendable {}
