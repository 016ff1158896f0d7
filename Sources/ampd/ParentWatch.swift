import AMPDObservability
import ArgumentParser
import Logging

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

/// The options every long-running process (controller, agent, gateway) shares, and what they
/// set up before it runs: JSON logs at a level, and `--exit-with-parent`.
struct ServiceProcessOptions: ParsableArguments {
    @Flag(help: "Shut down when the parent process goes away (set by `ampd up` and test harnesses).")
    var exitWithParent = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    /// Starts the parent watch if asked, bootstraps the JSON log handler, returns the logger.
    func begin(label: String) -> Logger {
        if exitWithParent { ParentWatch.start() }
        LogSetup.bootstrap(level: Logger.Level(rawValue: logLevel) ?? .info)
        return Logger(label: label)
    }
}
