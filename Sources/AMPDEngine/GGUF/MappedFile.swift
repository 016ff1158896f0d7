#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file. Immutable after creation, so it is
/// safe to share across threads; unmapped when the last reference goes.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let base: UnsafeRawPointer
    public let count: Int

    public init(path: String) throws(GGUFError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        guard size > 0 else { throw .truncated(what: "header", offset: 0, fileSize: 0) }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw .cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        self.base = UnsafeRawPointer(p)
        self.count = size
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), count) }
}
