import Foundation

/// Finds the first duplicated key of any object in a JSON text (which JSON decoders take
/// silently, the first or the last winning): its path, `spec.decode.replicas` or `items[2].name`.
/// The text is assumed to be valid JSON (decode it first); nesting is followed to any depth.
public enum JSONDuplicateKeys {
    enum Frame {
        case object(keys: Set<String>, path: String, expectKey: Bool)
        case array(path: String, index: Int)
    }

    public static func first(in data: Data) -> String? {
        let bytes = [UInt8](data)
        var stack: [Frame] = []
        var pendingKey: String?   // the key whose value comes next
        var i = 0
        func childPath() -> String {
            switch stack.last {
            case .object(_, let path, _)?: return FieldPath.join(path, pendingKey ?? "")
            case .array(let path, let index)?: return "\(path)[\(index)]"
            case nil: return ""
            }
        }
        while i < bytes.count {
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "{"):
                stack.append(.object(keys: [], path: childPath(), expectKey: true))
            case UInt8(ascii: "["):
                stack.append(.array(path: childPath(), index: 0))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                _ = stack.popLast()
            case UInt8(ascii: ","):
                switch stack.last {
                case .object(let keys, let path, _)?: stack[stack.count - 1] = .object(keys: keys, path: path, expectKey: true)
                case .array(let path, let index)?: stack[stack.count - 1] = .array(path: path, index: index + 1)
                case nil: break
                }
            case UInt8(ascii: "\""):
                var j = i + 1
                while j < bytes.count && bytes[j] != UInt8(ascii: "\"") { j += bytes[j] == UInt8(ascii: "\\") ? 2 : 1 }
                if case .object(var keys, let path, true)? = stack.last {
                    let raw = Data(bytes[i...min(j, bytes.count - 1)])
                    let key = (try? JSONDecoder().decode(String.self, from: raw)) ?? String(decoding: raw, as: UTF8.self)
                    if !keys.insert(key).inserted { return FieldPath.join(path, key) }
                    stack[stack.count - 1] = .object(keys: keys, path: path, expectKey: false)
                    pendingKey = key
                }
                i = j
            default:
                break
            }
            i += 1
        }
        return nil
    }
}
