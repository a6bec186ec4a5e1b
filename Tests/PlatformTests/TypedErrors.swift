import XCTest

/// The error of type `E` that `body` threw, or nil when it threw none; an error
/// of any other type fails the test (the APIs under test throw typed errors).
func thrownError<E: Error>(_ type: E.Type, _ body: () throws -> Void,
                           file: StaticString = #filePath, line: UInt = #line) -> E? {
    do {
        try body()
        return nil
    } catch let error as E {
        return error
    } catch {
        XCTFail("error of another type: \(error)", file: file, line: line)
        return nil
    }
}
