import Foundation
import Testing
@testable import AMPDEngine

/// Collects a generation's tokens and summary.
func run(_ engine: NativeEngine, _ request: GenerationRequest) async throws -> ([Int32], GenerationSummary) {
    var tokens: [Int32] = []
    var summary: GenerationSummary?
    for try await event in try await engine.generate(request) {
        switch event {
        case .token(let t, _): tokens.append(t)
        case .finished(let s): summary = s
        }
    }
    return (tokens, try #require(summary))
}

@Suite("Native engine on a tiny model")
struct EngineTests {
    let prompt: [Int32] = (0..<40).map { Int32(($0 * 37) % 250) }

    @Test("tokenizer: merges apply, specials are matched, bytes round-trip")
    func tinyTokenizer() throws {
        let tok = try BPETokenizer(gguf: GGUFFile(path: TinyModel.file()))
        let ids = tok.encode("hello world<|im_end|>")
        #expect(ids == [tok.id(of: "hello")!, tok.id(of: "\u{0120}world")!, tok.id(of: "<|im_end|>")!])
        #expect(tok.decode(ids) == "hello world")
        #expect(tok.decode(ids, special: true) == "hello world<|im_end|>")
        let text = "naïve 東京 🙂 12\n\n  x"
        #expect(tok.decode(tok.encode(text)) == text)
        #expect(tok.encode("<|im_end|>", parseSpecial: false).count > 1)
    }

    @Test("continuous batching gives each sequence exactly the tokens it gets alone")
    func batchingIsInvisible() async throws {
        let engine = try TinyModel.engine()
        var alone: [[Int32]] = []
        let prompts = (0..<5).map { i in Array(prompt.prefix(10 + 7 * i)) + [Int32(i)] }
        for p in prompts { alone.append(try await run(engine, GenerationRequest(tokens: p, maxTokens: 12)).0) }
        let together = try await withThrowingTaskGroup(of: (Int, [Int32]).self) { group in
            for (i, p) in prompts.enumerated() {
                group.addTask { (i, try await run(engine, GenerationRequest(tokens: p, maxTokens: 12)).0) }
            }
            var out = [[Int32]](repeating: [], count: prompts.count)
            for try await (i, t) in group { out[i] = t }
            return out
        }
        #expect(together == alone)
        let stats = await engine.stats()
        #expect(stats.kvBlocksUsed == 0 && stats.liveSequences == 0)
    }

    @Test("chunked prefill (small step budget) equals one-shot prefill")
    func chunkedPrefill() async throws {
        var small = NativeEngineOptions()
        small.stepTokenBudget = 7
        let a = try await run(try TinyModel.engine(), GenerationRequest(tokens: prompt, maxTokens: 10)).0
        let b = try await run(try TinyModel.engine(options: small), GenerationRequest(tokens: prompt, maxTokens: 10)).0
        #expect(a == b)
    }

    @Test("rounds appended to a live sequence equal the whole history prefilled at once; prefix blocks are reused")
    func incrementalRounds() async throws {
        let engine = try TinyModel.engine()
        let (r1, s1) = try await run(engine, GenerationRequest(tokens: prompt, maxTokens: 6, stopTokens: [], keepAlive: true))
        #expect(s1.reason == .length)
        let turn2: [Int32] = [5, 6, 7, 8, 9]
        let (r2, s2) = try await run(engine, GenerationRequest(sequence: s1.sequence, tokens: turn2, maxTokens: 6, stopTokens: []))
        #expect(s2.cachedTokens == prompt.count + r1.count - 1)  // everything but the last sampled token
        // A fresh engine computing the whole history at once.
        let fresh = try TinyModel.engine()
        let (r2b, _) = try await run(fresh, GenerationRequest(tokens: prompt + r1 + turn2, maxTokens: 6, stopTokens: []))
        #expect(r2 == r2b)
        // A new sequence with the same prefix shares its full blocks from the cache.
        let (_, s3) = try await run(engine, GenerationRequest(tokens: prompt + [1, 2], maxTokens: 2, stopTokens: []))
        #expect(s3.cachedTokens == (prompt.count + 1) / 16 * 16)
        #expect(await engine.stats().prefixCacheHitBlocks >= 2)
    }

    @Test("export, import into another engine, decode: the same tokens")
    func exportImport() async throws {
        let a = try TinyModel.engine()
        let (full, _) = try await run(a, GenerationRequest(tokens: prompt, maxTokens: 10, stopTokens: []))
        let (first, s) = try await run(a, GenerationRequest(tokens: prompt, prefillOnly: true))
        #expect(s.reason == .prefilled && first == [full[0]])
        let blob = try await a.exportKV(s.sequence)
        let b = try TinyModel.engine()
        let id = try await b.importKV(blob)
        #expect(try await b.tokens(of: id) == prompt + first)
        let (rest, _) = try await run(b, GenerationRequest(sequence: id, tokens: [], maxTokens: 9, stopTokens: []))
        #expect(first + rest == full)
    }

    @Test("a corrupted or mismatched export is refused with the reason")
    func corruptExport() async throws {
        let a = try TinyModel.engine()
        let (_, s) = try await run(a, GenerationRequest(tokens: prompt, prefillOnly: true))
        let blob = try await a.exportKV(s.sequence)
        let b = try TinyModel.engine()
        var flipped = blob
        flipped[blob.count / 2] ^= 0x40
        let e1 = await #expect(throws: EngineError.self) { try await b.importKV(flipped) }
        #expect("\(e1!)".contains("checksum mismatch"))
        let e2 = await #expect(throws: EngineError.self) { try await b.importKV(Array(blob.prefix(100))) }
        #expect("\(e2!)".contains("KV import refused"))
        var magic = blob
        magic[0] = 0
        let e3 = await #expect(throws: EngineError.self) { try await b.importKV(magic) }
        #expect("\(e3!)".contains("bad magic"))
        // Another model (different weights) refuses by fingerprint.
        let other = try NativeEngine(modelPath: try TinyModel.file(seed: 99))
        let e4 = await #expect(throws: EngineError.self) { try await other.importKV(blob) }
        #expect("\(e4!)".contains("fingerprint"))
        #expect(await b.stats().kvBlocksUsed == 0)
    }

    @Test("KV capacity exhaustion is a clear error, and what was running is unaffected")
    func capacity() async throws {
        var o = NativeEngineOptions()
        o.kvCapacityTokens = 64
        o.blockTokens = 16
        let engine = try TinyModel.engine(options: o)
        let tooLong = (0..<100).map { Int32($0 % 200) }
        await #expect(throws: EngineError.kvCapacityExhausted(needed: 7, free: 4, total: 4)) {
            _ = try await run(engine, GenerationRequest(tokens: tooLong, maxTokens: 2))
        }
        let (ok, _) = try await run(engine, GenerationRequest(tokens: Array(prompt.prefix(20)), maxTokens: 5, stopTokens: []))
        #expect(ok.count == 5)
    }

    @Test("an idle session's kept KV gives way to a running request (least recently used first); a round on it then says it is gone")
    func idleSessionsGiveWay() async throws {
        var o = NativeEngineOptions()
        o.kvCapacityTokens = 96   // 6 blocks of 16
        o.blockTokens = 16
        let engine = try TinyModel.engine(options: o)
        // Two sessions kept between rounds: 2 blocks each (20 + 5 tokens), idle.
        let (_, a) = try await run(engine, GenerationRequest(tokens: Array(prompt.prefix(20)), maxTokens: 5, stopTokens: [], keepAlive: true))
        let (_, b) = try await run(engine, GenerationRequest(tokens: Array(prompt.suffix(20)), maxTokens: 5, stopTokens: [], keepAlive: true))
        #expect(await engine.stats().liveSequences == 2)
        // A new request needing 4 blocks: only the older session (a) has to go.
        let fresh = (0..<60).map { Int32(($0 * 11 + 3) % 200) }
        let (out, _) = try await run(engine, GenerationRequest(tokens: fresh, maxTokens: 2, stopTokens: []))
        #expect(out.count == 2)
        let stats = await engine.stats()
        #expect(stats.evictedIdleSequences == 1 && stats.liveSequences == 1)
        await #expect(throws: EngineError.unknownSequence(a.sequence)) {
            try await engine.generate(GenerationRequest(sequence: a.sequence, tokens: [1], maxTokens: 1))
        }
        // The newer session is intact and continues.
        let (more, _) = try await run(engine, GenerationRequest(sequence: b.sequence, tokens: [7], maxTokens: 2, stopTokens: []))
        #expect(more.count == 2)
    }

    @Test("a remote incremental prefill: history in, only the new blocks back, appended to the owner's sequence; the same tokens as one engine")
    func incrementalExport() async throws {
        let owner = try TinyModel.engine(), worker = try TinyModel.engine(), reference = try TinyModel.engine()
        let first = Array(prompt.prefix(37)), next: [Int32] = (0..<21).map { Int32(($0 * 13 + 5) % 250) }
        // Round 1 on the owner (and on the reference), kept for the next round.
        let (_, a) = try await run(owner, GenerationRequest(tokens: first, maxTokens: 6, stopTokens: [], keepAlive: true))
        let (_, r) = try await run(reference, GenerationRequest(tokens: first, maxTokens: 6, stopTokens: [], keepAlive: true))
        // Round 2 prefilled on the worker from the owner's history KV (the lazy read) ...
        let history = try await owner.exportKV(a.sequence)
        let imported = try await worker.importKV(history)
        let computedBefore = try await worker.tokens(of: imported).count - 1
        let (firstToken, w) = try await run(worker, GenerationRequest(sequence: imported, tokens: next, maxTokens: 1, stopTokens: [], prefillOnly: true))
        // ... and only the blocks from the one holding the owner's last computed token come back.
        let back = try await worker.exportKV(w.sequence, fromToken: computedBefore)
        let whole = try await worker.exportKV(w.sequence)
        // 63 tokens computed in 16-token blocks, the owner's 42 (blocks 0-1 full, 2 partial): blocks 2 and 3 return.
        let (h, _) = try KVExportFormat.decode(back)
        #expect(h.startToken == 32 && h.blockCount == 2)
        #expect(back.count < whole.count)
        #expect(try await owner.importKV(back, into: a.sequence) == a.sequence)
        let (rest, _) = try await run(owner, GenerationRequest(sequence: a.sequence, tokens: [], maxTokens: 5, stopTokens: []))
        let (want, _) = try await run(reference, GenerationRequest(sequence: r.sequence, tokens: next, maxTokens: 6, stopTokens: []))
        #expect(firstToken + rest == want)
        // It extends only the history it was computed on.
        let (_, other) = try await run(owner, GenerationRequest(tokens: Array(prompt.suffix(37)), maxTokens: 2, stopTokens: [], keepAlive: true))
        await #expect(throws: EngineError.self) { try await owner.importKV(back, into: other.sequence) }
        await #expect(throws: EngineError.self) { try await owner.importKV(back) }
    }

    @Test("an export cut into prefix-hashed blocks joins back byte for byte; equal prefixes give equal blocks under equal hashes")
    func exportParts() async throws {
        let a = try TinyModel.engine(), b = try TinyModel.engine()
        let shared = Array(prompt.prefix(40))
        let (_, s1) = try await run(a, GenerationRequest(tokens: shared + [3, 4, 5], prefillOnly: true))
        let (_, s2) = try await run(b, GenerationRequest(tokens: shared + [9, 9, 9, 9, 9, 9, 9, 9, 9], prefillOnly: true))
        let e1 = try await a.exportKV(s1.sequence), e2 = try await b.exportKV(s2.sequence)
        let p1 = try KVExportFormat.split(e1), p2 = try KVExportFormat.split(e2)
        #expect(p1.joined() == e1 && p2.joined() == e2)
        // 43 and 49 computed tokens: 2 and 3 full 16-token blocks; the first two cover the shared 32 tokens.
        #expect(p1.blocks.count == 2 && p2.blocks.count == 3)
        #expect(p1.blocks.map(\.hash) == Array(p2.blocks.map(\.hash).prefix(2)))
        #expect(p1.blocks.map { Array($0.bytes) } == p2.blocks.prefix(2).map { Array($0.bytes) })
        // An incremental export names only its own blocks.
        let tail = try await b.exportKV(s2.sequence, fromToken: 32)
        let pt = try KVExportFormat.split(tail)
        #expect(pt.blocks.map(\.hash) == [p2.blocks[2].hash] && pt.joined() == tail)
    }

    @Test("a sequence cut back and continued differently gives what a fresh sequence gives; a cut inside a shared full block moves to its start")
    func truncate() async throws {
        let engine = try TinyModel.engine(), fresh = try TinyModel.engine()
        let history = prompt + Array(prompt.prefix(5))   // 45 tokens
        let (generated, a) = try await run(engine, GenerationRequest(tokens: history, maxTokens: 6, stopTokens: [], keepAlive: true))
        // 50 computed: full blocks 0-47, a partial one from 48. Inside it: kept exactly.
        let all = history + generated
        #expect(try await engine.truncate(a.sequence, to: 49) == 49)
        #expect(try await engine.tokens(of: a.sequence) == Array(all.prefix(49)))
        let edit: [Int32] = [5, 6, 7, 8]
        let (got, _) = try await run(engine, GenerationRequest(sequence: a.sequence, tokens: edit, maxTokens: 5, stopTokens: [], keepAlive: true))
        let (want, _) = try await run(fresh, GenerationRequest(tokens: Array(all.prefix(49)) + edit, maxTokens: 5, stopTokens: []))
        #expect(got == want)
        // Inside a full block (token 40 of block 32-47): back to 32; the caller sends the rest.
        #expect(try await engine.truncate(a.sequence, to: 40) == 32)
        let (again, _) = try await run(engine, GenerationRequest(sequence: a.sequence, tokens: Array(history[32...]), maxTokens: 6, stopTokens: []))
        #expect(again == generated)
        await #expect(throws: EngineError.unknownSequence(999)) { try await engine.truncate(999, to: 1) }
    }

    @Test("bad requests are refused before any work")
    func badRequests() async throws {
        let engine = try TinyModel.engine()
        await #expect(throws: EngineError.self) { try await engine.generate(GenerationRequest(tokens: [9999])) }
        await #expect(throws: EngineError.self) { try await engine.generate(GenerationRequest(tokens: [])) }
        await #expect(throws: EngineError.unknownSequence(77)) { try await engine.generate(GenerationRequest(sequence: 77, tokens: [1])) }
        await #expect(throws: EngineError.self) { try await engine.generate(GenerationRequest(tokens: [1], sampling: SamplingParams(temperature: -1))) }
    }

    @Test("a cache salt keeps prefix blocks to sequences of the same salt (one tenant's), across export and import too")
    func cacheSalt() async throws {
        let engine = try TinyModel.engine(), other = try TinyModel.engine()
        let (_, a) = try await run(engine, GenerationRequest(tokens: prompt, maxTokens: 2, stopTokens: [], keepAlive: true, cacheSalt: 7))
        let (_, b) = try await run(engine, GenerationRequest(tokens: prompt, maxTokens: 2, stopTokens: [], cacheSalt: 8))
        let (_, c) = try await run(engine, GenerationRequest(tokens: prompt, maxTokens: 2, stopTokens: [], cacheSalt: 7))
        #expect(b.cachedTokens == 0 && c.cachedTokens == 32)
        // An export carries its salt: the importing engine shares its blocks only with that salt.
        let id = try await other.importKV(try await engine.exportKV(a.sequence))
        let (_, d) = try await run(other, GenerationRequest(tokens: prompt, maxTokens: 2, stopTokens: [], cacheSalt: 8))
        let (_, e) = try await run(other, GenerationRequest(tokens: prompt, maxTokens: 2, stopTokens: [], cacheSalt: 7))
        #expect(d.cachedTokens == 0 && e.cachedTokens == 32)
        await other.release(id)
    }

    @Test("penalties: presence and frequency count generated tokens, repetition covers the prompt too")
    func penalties() {
        let logits: [Float] = [5, 4, 1]
        var plain = Sampler(.greedy)
        #expect(plain.sample(logits) == 0 && plain.sample(logits) == 0)
        var frequency = Sampler(SamplingParams(frequencyPenalty: 2))
        #expect(frequency.sample(logits) == 0 && frequency.sample(logits) == 1)
        var presence = Sampler(SamplingParams(presencePenalty: 0.5))
        #expect(presence.sample(logits) == 0 && presence.sample(logits) == 0)   // 4.5 still beats 4
        var repetition = Sampler(SamplingParams(repetitionPenalty: 2), prompt: [0])
        #expect(repetition.sample(logits) == 1)                                 // 5 / 2 < 4
        #expect(throws: EngineError.self) { try SamplingParams(presencePenalty: 3).validate() }
        #expect(throws: EngineError.self) { try SamplingParams(repetitionPenalty: 0).validate() }
    }

    @Test("a stop string ends generation at the token that completes it, the token kept in the history")
    func stopStrings() async throws {
        let engine = try TinyModel.engine()
        let (full, _) = try await run(engine, GenerationRequest(tokens: prompt, maxTokens: 12, stopTokens: []))
        let tokenizer = engine.tokenizer
        // The text of tokens 3 and 4 (bytes the tiny vocabulary spells); stop there.
        let index = try #require((3..<10).first { !tokenizer.bytes(of: full[$0]).isEmpty })
        let stop = String(decoding: tokenizer.bytes(of: full[index]), as: UTF8.self)
        let firstHit = try #require((0...index).first { String(decoding: full[0...$0].flatMap { tokenizer.bytes(of: $0) }, as: UTF8.self).contains(stop) })
        let (got, summary) = try await run(engine, GenerationRequest(tokens: prompt, maxTokens: 12, stopTokens: [], keepAlive: true, stopStrings: [stop]))
        #expect(summary.reason == .stop && got == Array(full[0...firstHit]))
        #expect(try await engine.tokens(of: summary.sequence) == prompt + got)
    }

    @Test("sampling: equal seeds give equal samples; top-k 1 is greedy")
    func sampling() async throws {
        let engine = try TinyModel.engine()
        let hot = SamplingParams(temperature: 1.5, topK: 50, topP: 0.95, seed: 1234)
        let a = try await run(engine, GenerationRequest(tokens: prompt, maxTokens: 16, sampling: hot, stopTokens: [])).0
        let b = try await run(engine, GenerationRequest(tokens: prompt, maxTokens: 16, sampling: hot, stopTokens: [])).0
        #expect(a == b)
        var other = hot
        other.seed = 99
        let c = try await run(engine, GenerationRequest(tokens: prompt, maxTokens: 16, sampling: other, stopTokens: [])).0
        #expect(a != c)
        let greedy = try await run(engine, GenerationRequest(tokens: prompt, maxTokens: 8, stopTokens: [])).0
        let k1 = try await run(engine, GenerationRequest(tokens: prompt, maxTokens: 8, sampling: SamplingParams(temperature: 0.8, topK: 1, seed: 5), stopTokens: [])).0
        #expect(greedy == k1)
    }

    @Test("cancelling a stream frees the sequence's KV")
    func cancellation() async throws {
        let engine = try TinyModel.engine()
        let stream = try await engine.generate(GenerationRequest(tokens: prompt, maxTokens: 400, stopTokens: []))
        var n = 0
        for try await event in stream {
            if case .token = event { n += 1 }
            if n == 3 { break }
        }
        // The cancellation reaches the engine's loop asynchronously (slowly when the machine is busy).
        for _ in 0..<2000 {
            if await engine.stats().liveSequences == 0 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        let stats = await engine.stats()
        #expect(stats.liveSequences == 0 && stats.kvBlocksUsed == 0)
    }
}

@Suite("Engine step timings")
struct EngineStepTimingTests {
    let prompt: [Int32] = (0..<40).map { Int32(($0 * 37) % 250) }

    @Test("each step is reported once with what it computed: the prompt as one chunk, then one decode token at a growing context")
    func samples() async throws {
        let engine = try TinyModel.engine()
        _ = try await run(engine, GenerationRequest(tokens: prompt, maxTokens: 5, stopTokens: []))
        let s = engine.takeStepSamples()
        #expect(s.count == 5)
        #expect(s.first == EngineStepSample(decodeSequences: 0, decodeContext: 0, prefill: [.init(history: 0, new: 40)], seconds: s[0].seconds,
                                              forwardSeconds: s[0].forwardSeconds))
        #expect(s.dropFirst().map(\.decodeContext) == [41, 42, 43, 44])
        #expect(s.dropFirst().allSatisfy { $0.decodeSequences == 1 && $0.prefill.isEmpty })
        #expect(s.allSatisfy { $0.seconds > 0 })
        #expect(engine.takeStepSamples().isEmpty)
    }

    @Test("--engine-slowdown: each step takes that many times as long as its forward pass")
    func slowdown() async throws {
        func samples(_ slowdown: Double) async throws -> [EngineStepSample] {
            var o = NativeEngineOptions()
            o.slowdown = slowdown
            let engine = try TinyModel.engine(options: o)
            _ = try await run(engine, GenerationRequest(tokens: prompt, maxTokens: 24, stopTokens: []))
            return engine.takeStepSamples()
        }
        let slowed = try await samples(10)
        #expect(slowed.count == 24)
        for s in slowed { #expect(s.forwardSeconds > 0 && s.seconds >= 10 * s.forwardSeconds * 0.99, "\(s)") }
    }

    @Test("KV exports and imports are timed apart, with the tokens they moved")
    func kvWork() async throws {
        let a = try TinyModel.engine(), b = try TinyModel.engine()
        let (_, s) = try await run(a, GenerationRequest(tokens: prompt, maxTokens: 4, stopTokens: [], keepAlive: true))
        let blob = try await a.exportKV(s.sequence)
        _ = try await b.importKV(blob)
        let exported = a.takeKVWorkSamples(), imported = b.takeKVWorkSamples()
        #expect(exported.count == 1 && exported[0].export && exported[0].tokens == 43 && exported[0].seconds > 0)
        #expect(imported.count == 1 && !imported[0].export && imported[0].tokens == 43)
        #expect(a.takeKVWorkSamples().isEmpty)
    }
}
