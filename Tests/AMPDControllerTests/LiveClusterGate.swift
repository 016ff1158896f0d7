import Testing

/// Lets one heavy, timing-sensitive live-cluster test run at a time (three agents, dozens of
/// concurrent sessions, queue-order checks), so that on a two-core machine they do not skew one
/// another; the rest of the suite still runs beside them.
actor LiveClusterGate {
    static let shared = LiveClusterGate()
    var busy = false
    var waiting: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard busy else { busy = true; return }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }
}

/// `@Suite(.exclusiveLiveCluster)`: each test of the suite holds the gate while it runs.
struct ExclusiveLiveClusterTrait: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard !test.isSuite else { return try await function() }
        await LiveClusterGate.shared.acquire()
        do {
            try await function()
        } catch {
            await LiveClusterGate.shared.release()
            throw error
        }
        await LiveClusterGate.shared.release()
    }
}

extension Trait where Self == ExclusiveLiveClusterTrait {
    static var exclusiveLiveCluster: Self { Self() }
}
