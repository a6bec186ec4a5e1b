/// The board's own verdicts: one `[PASS]`/`[FAIL]` line per check, and the
/// closing `N passed, N failed` line that `make test` reads.
enum Checks {
    nonisolated(unsafe) static var passed = 0
    nonisolated(unsafe) static var failed = 0

    /// The message goes on as its address alone (see `Console.put`); a
    /// message is never one character long.
    @_transparent
    static func expect(_ ok: Bool, _ what: StaticString) {
        expectText(ok, what.utf8Start)
    }

    @inline(never)
    static func expectText(_ ok: Bool, _ what: UnsafePointer<UInt8>) {
        if ok { passed += 1; Console.put("[PASS] ") } else { failed += 1; Console.put("[FAIL] ") }
        Console.lineText(what)
    }

    static func summary() {
        Console.say("board: %d passed, %d failed\n", UInt64(passed), UInt64(failed))
    }
}
