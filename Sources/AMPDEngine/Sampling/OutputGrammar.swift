/// What a generation's output must be: its segments in order, then a stop token. The sampler
/// only picks tokens whose bytes keep the output a prefix of the grammar, so a JSON object
/// (`response_format: json_object`) or a tool call in the model's format (`tool_choice:
/// required` or a named function) comes out well formed, however small the model.
public struct OutputGrammar: Sendable, Hashable, Codable {
    public enum Segment: Sendable, Hashable, Codable {
        /// Exactly this text.
        case literal(String)
        /// One of these strings (a function's name).
        case oneOf([String])
        /// A JSON object (any keys and values; nesting at most `JSONMatcher.maxDepth`).
        case jsonObject
        /// A JSON string, quotes included.
        case jsonString
        /// A JSON number (an integer when `integer`).
        case jsonNumber(integer: Bool)
    }

    public var segments: [Segment]

    public init(_ segments: [Segment]) {
        self.segments = segments
    }

    public static let jsonObject = OutputGrammar([.jsonObject])
}

/// A byte-level recogniser of `OutputGrammar`: its state is a plain value, so testing
/// whether a token's bytes may follow is a copy and a walk, with no allocation.
public struct GrammarMatcher: Sendable {
    enum Program: Sendable {
        case literal([UInt8])
        /// Sorted, distinct choices.
        case oneOf([[UInt8]])
        case json(JSONMatcher.Top)
    }

    struct State: Sendable, Equatable {
        var segment = 0
        /// Bytes matched of the current literal or choice.
        var offset = 0
        /// The choices still possible: a range of the sorted list (those sharing the prefix).
        var lo = 0
        var hi = 0
        var json = JSONMatcher()
    }

    let program: [Program]
    var state = State()

    public init(_ grammar: OutputGrammar) {
        program = grammar.segments.map { s in
            switch s {
            case .literal(let t): .literal(Array(t.utf8))
            case .oneOf(let names): .oneOf(Set(names.map { Array($0.utf8) }).sorted { $0.lexicographicallyPrecedes($1) })
            case .jsonObject: .json(.object)
            case .jsonString: .json(.string)
            case .jsonNumber(let integer): .json(integer ? .integer : .number)
            }
        }
        enter(&state)
    }

    /// Whether the whole grammar has been matched (only a stop token may follow).
    public var isComplete: Bool { state.segment >= program.count }

    /// Whether `bytes` may come next.
    public func accepts(_ bytes: some Collection<UInt8>) -> Bool {
        guard !bytes.isEmpty else { return false }
        var s = state
        for b in bytes where !step(&s, b) { return false }
        return true
    }

    /// Consumes `bytes` (which `accepts`); false, leaving the state unchanged, if it does not.
    @discardableResult
    public mutating func advance(_ bytes: some Collection<UInt8>) -> Bool {
        var s = state
        for b in bytes where !step(&s, b) { return false }
        state = s
        return true
    }

    /// Sets up the state for the segment it points at (skipping empty ones).
    func enter(_ s: inout State) {
        while s.segment < program.count {
            s.offset = 0
            switch program[s.segment] {
            case .literal(let t) where t.isEmpty: s.segment += 1; continue
            case .oneOf(let c):
                s.lo = 0
                s.hi = c.count
                if c.isEmpty || c.contains(where: \.isEmpty) { s.segment += 1; continue }
            case .json(let top): s.json = JSONMatcher(top: top)
            default: break
            }
            return
        }
    }

    func step(_ s: inout State, _ b: UInt8) -> Bool {
        guard s.segment < program.count else { return false }
        switch program[s.segment] {
        case .literal(let t):
            guard t[s.offset] == b else { return false }
            s.offset += 1
            if s.offset == t.count { s.segment += 1; enter(&s) }
            return true
        case .oneOf(let choices):
            // Narrow the range to the choices with `b` at `offset`.
            var lo = s.lo, hi = s.hi
            while lo < hi, choices[lo].count <= s.offset || choices[lo][s.offset] != b { lo += 1 }
            guard lo < hi else {
                // A choice that is a prefix of others (it sorts first) ends here when none goes on with `b`.
                guard choices[s.lo].count == s.offset else { return false }
                s.segment += 1
                enter(&s)
                return step(&s, b)
            }
            var end = lo
            while end < hi, choices[end].count > s.offset, choices[end][s.offset] == b { end += 1 }
            hi = end
            s.offset += 1
            s.lo = lo
            s.hi = hi
            // Complete when exactly one choice remains and it is fully matched (choices are
            // distinct, and one that is a prefix of another sorts first: it ends the segment
            // only when it is the last candidate).
            if hi - lo == 1, choices[lo].count == s.offset { s.segment += 1; enter(&s) }
            return true
        case .json:
            guard s.json.step(b) else {
                // A top-level number ends where the next segment begins.
                guard s.json.mayEndHere else { return false }
                s.segment += 1
                enter(&s)
                return step(&s, b)
            }
            if s.json.isDone { s.segment += 1; enter(&s) }
            return true
        }
    }
}

/// A pushdown recogniser of one JSON value (an object, or a string or a number), byte by
/// byte, in a fixed-size value.
/// Whitespace between tokens is allowed but runs of it are capped (a small model stuck
/// emitting spaces is made to go on), as are number lengths and nesting depth.
public struct JSONMatcher: Sendable, Equatable {
    public static let maxDepth = 32
    static let maxWhitespaceRun = 16
    static let maxNumberLength = 32

    enum Mode: UInt8, Sendable {
        case start          // before the top-level '{'
        case value          // a value must come
        case valueOrClose   // after '['
        case keyOrClose     // after '{'
        case key            // after ',' in an object
        case colon          // after a key
        case after          // after a value: ',' or the container's close
        case string
        case escape
        case unicode
        case number
        case literal
        case done
    }

    public enum Top: UInt8, Sendable {
        case object, string, number, integer
    }

    var top = Top.object
    var mode = Mode.start
    /// One bit per open container, 1 for an object; bit `depth - 1` is the innermost.
    var stack: UInt64 = 0
    var depth = 0
    var inKey = false
    /// Hex digits left in `\uXXXX`, or characters of a number so far.
    var count = 0
    /// Number parse state (see `number(_:)`), or which literal and how far.
    var sub: UInt8 = 0
    var literal: UInt8 = 0
    var whitespace = 0

    public init(top: Top = .object) {
        self.top = top
    }

    public var isDone: Bool { mode == .done }

    /// A top-level number that may end here (it ends when the next byte is not its own).
    public var mayEndHere: Bool { mode == .number && depth == 0 && (sub == 1 || sub == 2 || sub == 4 || sub == 7) }

    static let literals: [[UInt8]] = [Array("true".utf8), Array("false".utf8), Array("null".utf8)]

    static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x09 || b == 0x0D }

    mutating func step(_ b: UInt8) -> Bool {
        switch mode {
        case .string: return string(b)
        case .escape:
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                 UInt8(ascii: "r"), UInt8(ascii: "t"):
                mode = .string
                return true
            case UInt8(ascii: "u"):
                mode = .unicode
                count = 4
                return true
            default: return false
            }
        case .unicode:
            guard Self.isHex(b) else { return false }
            count -= 1
            if count == 0 { mode = .string }
            return true
        case .number:
            if number(b) { return true }
            // The number ended (if it may end here): the byte is the next token's.
            guard depth > 0, sub == 1 || sub == 2 || sub == 4 || sub == 7 else { return false }
            mode = .after
            return step(b)
        case .literal:
            let word = Self.literals[Int(literal)]
            guard word[count] == b else { return false }
            count += 1
            if count == word.count { mode = .after; whitespace = 0 }
            return true
        case .done: return false
        default: break
        }
        if Self.isWhitespace(b) {
            guard mode != .done, !(mode == .start && top != .object), whitespace < Self.maxWhitespaceRun else { return false }
            whitespace += 1
            return true
        }
        whitespace = 0
        switch mode {
        case .start:
            switch top {
            case .object:
                guard b == UInt8(ascii: "{") else { return false }
                return open(object: true)
            case .string:
                guard b == UInt8(ascii: "\"") else { return false }
                return value(b)
            case .number, .integer:
                guard b == UInt8(ascii: "-") || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) else { return false }
                return value(b)
            }
        case .keyOrClose:
            if b == UInt8(ascii: "}") { return close(object: true) }
            fallthrough
        case .key:
            guard b == UInt8(ascii: "\"") else { return false }
            mode = .string
            inKey = true
            return true
        case .colon:
            guard b == UInt8(ascii: ":") else { return false }
            mode = .value
            return true
        case .valueOrClose:
            if b == UInt8(ascii: "]") { return close(object: false) }
            fallthrough
        case .value:
            return value(b)
        case .after:
            let inObject = stack >> (depth - 1) & 1 == 1
            switch b {
            case UInt8(ascii: ","):
                mode = inObject ? .key : .value
                return true
            case UInt8(ascii: "}"): return inObject && close(object: true)
            case UInt8(ascii: "]"): return !inObject && close(object: false)
            default: return false
            }
        default: return false
        }
    }

    mutating func value(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "{"): return open(object: true)
        case UInt8(ascii: "["): return open(object: false)
        case UInt8(ascii: "\""):
            mode = .string
            inKey = false
            return true
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            mode = .literal
            literal = b == UInt8(ascii: "t") ? 0 : b == UInt8(ascii: "f") ? 1 : 2
            count = 1
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            mode = .number
            count = 0
            sub = 0
            return number(b)
        default: return false
        }
    }

    mutating func open(object: Bool) -> Bool {
        guard depth < Self.maxDepth else { return false }
        if object { stack |= 1 << UInt64(depth) } else { stack &= ~(1 << UInt64(depth)) }
        depth += 1
        mode = object ? .keyOrClose : .valueOrClose
        return true
    }

    mutating func close(object: Bool) -> Bool {
        depth -= 1
        mode = depth == 0 ? .done : .after
        return true
    }

    mutating func string(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "\""):
            mode = inKey ? .colon : depth == 0 ? .done : .after
            whitespace = 0
            return true
        case UInt8(ascii: "\\"):
            mode = .escape
            return true
        case 0..<0x20: return false
        default: return true
        }
    }

    /// Number states: 0 start, 1 after a leading 0, 2 integer digits, 3 after '.', 4 fraction
    /// digits, 5 after 'e', 6 after the exponent's sign, 7 exponent digits; 8 after '-'.
    mutating func number(_ b: UInt8) -> Bool {
        let digit = b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")
        guard count < Self.maxNumberLength else { return false }
        let next: UInt8?
        switch (sub, b) {
        case (0, UInt8(ascii: "-")): next = 8
        case (0, UInt8(ascii: "0")), (8, UInt8(ascii: "0")): next = 1
        case (0, _) where digit, (8, _) where digit: next = 2
        case (2, _) where digit: next = 2
        case (1, UInt8(ascii: ".")), (2, UInt8(ascii: ".")): next = 3
        case (3, _) where digit, (4, _) where digit: next = 4
        case (1, UInt8(ascii: "e")), (1, UInt8(ascii: "E")), (2, UInt8(ascii: "e")), (2, UInt8(ascii: "E")),
             (4, UInt8(ascii: "e")), (4, UInt8(ascii: "E")): next = 5
        case (5, UInt8(ascii: "+")), (5, UInt8(ascii: "-")): next = 6
        case (5, _) where digit, (6, _) where digit, (7, _) where digit: next = 7
        default: next = nil
        }
        guard let next, !(top == .integer && depth == 0 && (next == 3 || next == 5)) else { return false }
        sub = next
        count += 1
        whitespace = 0
        return true
    }

    static func isHex(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "f")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "F"))
    }
}
