#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `--exit-with-parent`: a process started by `ampd up` or a test harness follows its parent.
/// When the parent goes away — even killed, with no chance to stop its children — this
/// process is re-parented; it then sends itself SIGTERM, so it shuts down the usual graceful way.
enum ParentWatch {
    static func start() {
        let parent = getppid()
        Task.detached {
            while true {
                try? await Task.sleep(for: .seconds(1))
                if getppid() != parent {
                    kill(getpid(), SIGTERM)
                    return
                }
            }
        }
    }
}
