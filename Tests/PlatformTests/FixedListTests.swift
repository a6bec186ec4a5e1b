import XCTest
import HostFakes
@testable import Platform

final class FixedListTests: XCTestCase {
    func testAppendInsertRemoveAgainstArray() {
        var list = FixedList<8, Int>()
        var model: [Int] = []
        var rng = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            switch rng.next() % 3 {
            case 0:
                let value = Int(rng.next() % 100)
                XCTAssertEqual(list.append(value), model.count < 8)
                if model.count < 8 { model.append(value) }
            case 1:
                let at = Int(rng.next() % UInt64(model.count + 1))
                let value = Int(rng.next() % 100)
                XCTAssertEqual(list.insert(value, at: at), model.count < 8)
                if model.count < 8 { model.insert(value, at: at) }
            default:
                guard !model.isEmpty else { continue }
                let at = Int(rng.next() % UInt64(model.count))
                list.remove(at: at)
                model.remove(at: at)
            }
            XCTAssertEqual(Array(list), model)
            // The in-place read agrees with the plain subscript and the model, slot by slot.
            for index in model.indices {
                XCTAssertEqual(list[slot: index], model[index])
                XCTAssertEqual(list[index], model[index])
            }
            XCTAssertEqual(list.isFull, model.count == 8)
        }
        list.removeAll()
        XCTAssertTrue(list.isEmpty)
    }

    /// The board keeps a guest's report hypercalls in a FixedList and only
    /// counts the rest: 32,768 appends (what once exhausted the 1 MiB bump
    /// heap) leave the first values in place and the count at capacity.
    func testAFullListRefusesAndStaysAsItWas() {
        var list = FixedList<8, UInt64>()
        var refused = 0
        for value in 0..<UInt64(32_768) where !list.append(value) { refused += 1 }
        XCTAssertEqual(list.count, 8)
        XCTAssertTrue(list.isFull)
        XCTAssertEqual(Array(list), Array(0..<8))
        XCTAssertEqual(refused, 32_768 - 8)
    }
}
