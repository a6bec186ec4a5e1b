/// The board's own verdicts: one `[PASS]`/`[FAIL]` line per check, and the
/// closing `N passed, N failed` line that `make test` reads.
enum Checks {
    nonisolated(unsafe) static var passed = 0
    nonisolated(unsafe) static var failed = 0

    /// The message goes on as its address alone (see `Console.put`); a
    /// message is never one character long.
    @_transparent
    static func expect(_ ok: Bool, _ what: StaticString) {
        hvCheck(ok, what.utf8Start)
    }

    static func summary() {
        Console.say("board: %d passed, %d failed\n", UInt64(passed), UInt64(failed))
    }
}

/// `Checks.expect` for a NUL-terminated message. A C name, so Linker/hv.ld can
/// put it in the gap before the vectors.
@c(hv_check)
func hvCheck(_ ok: Bool, _ what: UnsafePointer<UInt8>) {
    if ok { Checks.passed += 1; Console.put("[PASS] ") } else { Checks.failed += 1; Console.put("[FAIL] ") }
    hvConsoleLine(what)
}
