import Translation

/// The host tests and the benchmark drive their P2Ms from one thread, so they
/// take one P2M lock for the whole process and hand its token to every P2M edit,
/// which demands one. The board takes each domain's own lock around its edits.
public let hostP2MLock = P2MLock()
/// The token of `hostP2MLock`, held until the process exits.
public let lockHeld = hostP2MLock.acquire()
