import AMPDStore
import ServiceLifecycle
import UnixSignals

/// SIGTERM and SIGINT, trapped once for the whole life of the controller process.
///
/// On Linux, libdispatch installs a process-wide handler the first time a signal source is made
/// and never removes it; while no source is registered, a signal that arrives is neither
/// delivered nor acted on (and before the first source, it kills the process). A replica that
/// trapped signals while campaigning and again once its service group ran could therefore die by
/// SIGTERM, or ignore it, in between: while it loaded the shared CA after being elected. One trap
/// from start to exit, turned into a latch, leaves no such gap.
final class StopSignals: Sendable {
    /// Opens on the first SIGTERM or SIGINT.
    let requested: Latch
    private let listener: Task<Void, Never>

    private init(requested: Latch, listener: Task<Void, Never>) {
        self.requested = requested
        self.listener = listener
    }

    /// Traps the signals; returns once the trap is in place (no early signal is missed).
    static func trap() async -> StopSignals {
        let latch = Latch()
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let listener = Task {
            for await _ in signals { latch.open() }
        }
        return StopSignals(requested: latch, listener: listener)
    }

    /// Asks `group` to shut down gracefully once a signal arrives (at once if one already has).
    func forward(to group: ServiceGroup) -> Task<Void, Never> {
        let requested = self.requested
        return Task {
            await requested.wait()
            if !Task.isCancelled { await group.triggerGracefulShutdown() }
        }
    }
}
