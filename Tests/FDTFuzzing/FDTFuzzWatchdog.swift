import Foundation

/// Notices an execution that does not come back. The driver's own check of
/// an execution's time runs only after `execute` returns, so a real infinite
/// loop would stall the run forever and report nothing; this watchdog looks
/// from a second thread, every `poll`, at the execution that is running and
/// calls `onHang` once with its index when it has run longer than `limit`.
/// `hv-fuzz` prints the index (the input is replayed by `FDTFuzzer.input(at:)`)
/// and exits 1 from there, since the stuck execution cannot be stopped.
public final class FDTFuzzWatchdog: @unchecked Sendable {
    public typealias Handler = @Sendable (_ index: UInt64, _ running: Duration) -> Void

    let limit: Duration
    let poll: Duration
    let onHang: Handler
    let clock = ContinuousClock()
    // Guards everything below: the driver writes, the watchdog thread reads.
    let lock = NSLock()
    var running: (index: UInt64, began: ContinuousClock.Instant)?
    var stopped = false
    var fired = false

    public init(limit: Duration, poll: Duration = .milliseconds(100), onHang: @escaping Handler) {
        self.limit = limit
        self.poll = poll
        self.onHang = onHang
        let thread = Thread { [self] in watch() }
        thread.name = "hv-fuzz watchdog"
        thread.start()
    }

    /// Execution `index` starts now.
    public func begin(_ index: UInt64) {
        lock.lock()
        running = (index, clock.now)
        lock.unlock()
    }

    /// The execution that began last has returned.
    public func end() {
        lock.lock()
        running = nil
        lock.unlock()
    }

    /// Ends the watchdog thread (within one `poll`).
    public func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
    }

    /// Whether `onHang` has been called.
    public var hasFired: Bool {
        lock.lock()
        defer { lock.unlock() }
        return fired
    }

    private func watch() {
        while true {
            Thread.sleep(forTimeInterval: Double(poll.components.attoseconds) / 1e18 + Double(poll.components.seconds))
            lock.lock()
            if stopped {
                lock.unlock()
                return
            }
            var hung: (UInt64, Duration)?
            if !fired, let running, clock.now - running.began > limit {
                fired = true
                hung = (running.index, clock.now - running.began)
            }
            lock.unlock()
            if let (index, time) = hung { onHang(index, time) }
        }
    }
}
