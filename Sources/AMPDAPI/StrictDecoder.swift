import Foundation

/// Decodes a tree into a typed value and rejects every member the type does not know.
///
/// The typed model is the single source of truth for what a field is: decoding finds type errors
/// (with their path), and re-encoding the decoded value shows which members were understood.
/// Anything present in the input but absent from the re-encoding is an unknown field.
/// Types decoded this way must encode every member they decode (including ones equal to defaults).
public enum StrictDecoder {
    public static func decode<T: Codable>(
        _ type: T.Type, from value: JSONValue, kind: String, ignoring ignored: Set<String> = []
    ) throws(InvalidObjectError) -> T {
        let (decoded, unknown) = try decodeListingUnknown(type, from: value, kind: kind, ignoring: ignored)
        if !unknown.isEmpty {
            let name = value["metadata"]?["name"].flatMap { if case .string(let s) = $0 { s } else { nil } }
            throw InvalidObjectError(kind: kind, name: name, causes: unknown.map { FieldError($0, "unknown field") })
        }
        return decoded
    }

    /// Decodes what the type understands and lists the paths of the members it does not (for
    /// `fieldValidation=Warn|Ignore`); type errors still throw.
    public static func decodeListingUnknown<T: Codable>(
        _ type: T.Type, from value: JSONValue, kind: String, ignoring ignored: Set<String> = []
    ) throws(InvalidObjectError) -> (T, unknown: [String]) {
        let input = value.removingNulls
        let name = input["metadata"]?["name"].flatMap { if case .string(let s) = $0 { s } else { nil } }
        let decoded: T
        do {
            decoded = try T(from: JSONValueDecoder(input))
        } catch let error as DecodingError {
            throw InvalidObjectError(kind: kind, name: name, causes: [cause(error)])
        } catch let error as InvalidObjectError {
            throw error
        } catch {
            throw InvalidObjectError(kind: kind, name: name, causes: [FieldError("", "\(error)")])
        }
        let understood: JSONValue
        do {
            understood = try JSONValue(encoding: decoded)
        } catch {
            throw InvalidObjectError(kind: kind, name: name, causes: [FieldError("", "cannot re-encode: \(error)")])
        }
        var unknown: [FieldError] = []
        collectUnknown(input: input, understood: understood, path: "", ignored: ignored, into: &unknown)
        return (decoded, unknown.map(\.field))
    }

    /// Turns a DecodingError into a field error with a dotted path.
    public static func cause(_ error: DecodingError) -> FieldError {
        switch error {
        case .typeMismatch(let type, let ctx):
            return FieldError(FieldPath.render(ctx.codingPath), "expected \(DocumentReader.typeWord(type))\(got(ctx))")
        case .valueNotFound(let type, let ctx):
            return FieldError(FieldPath.render(ctx.codingPath), "expected \(DocumentReader.typeWord(type)), got null")
        case .keyNotFound(let key, let ctx):
            return FieldError(FieldPath.render(ctx.codingPath + [key]), "required field is missing")
        case .dataCorrupted(let ctx):
            return FieldError(FieldPath.render(ctx.codingPath), ctx.debugDescription)
        @unknown default:
            return FieldError("", "\(error)")
        }
    }

    private static func got(_ ctx: DecodingError.Context) -> String {
        // Foundation says e.g. "Expected to decode Int but found a string instead."
        let d = ctx.debugDescription
        if let r = d.range(of: "but found ") {
            var rest = String(d[r.upperBound...])
            if rest.hasSuffix(" instead.") { rest.removeLast(" instead.".count) }
            return ", got \(rest)"
        }
        return ""
    }

    private static func collectUnknown(
        input: JSONValue, understood: JSONValue, path: String, ignored: Set<String>, into out: inout [FieldError]
    ) {
        switch (input, understood) {
        case (.object(let i), .object(let u)):
            for key in i.keys.sorted() {
                let childPath = FieldPath.join(path, key)
                if ignored.contains(childPath) { continue }
                guard let uv = u[key] else {
                    out.append(FieldError(childPath, "unknown field"))
                    continue
                }
                collectUnknown(input: i[key]!, understood: uv, path: childPath, ignored: ignored, into: &out)
            }
        case (.array(let i), .array(let u)):
            for (n, item) in i.enumerated() where n < u.count {
                collectUnknown(input: item, understood: u[n], path: "\(path)[\(n)]", ignored: ignored, into: &out)
            }
        default:
            break
        }
    }
}
