"""ampd's standing fault suite (run by Benchmarks/chaos.sh): a real local cluster and a real
controller, faults injected while multi-round sessions run, hostile inputs and identities
thrown at every endpoint. Prints one table row per fault kind and one headline line:
lost, silently wrong (a 200 whose tokens differ from the same request sent fresh),
accepted-unauthorized, crashed, 5xx.

    python3 Benchmarks/chaos.py BIN WORKDIR
"""
import http.client, json, os, shutil, signal, socket, ssl, struct, subprocess, sys, threading, time, urllib.request

BIN, WORK = sys.argv[1], sys.argv[2]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rows = []                      # (fault kind, injected, requests, lost, wrong, unauthorized, crashed, 5xx, note)
totals = dict(sessions=0, requests=0, lost=0, wrong=0, unauthorized=0, crashed=0, fivexx=0, faults={}, bad=0)


def row(kind, injected=0, requests=0, lost=0, wrong=0, unauthorized=0, crashed=0, fivexx=0, note=""):
    rows.append((kind, injected, requests, lost, wrong, unauthorized, crashed, fivexx, note))
    totals["requests"] += requests; totals["lost"] += lost; totals["wrong"] += wrong
    totals["unauthorized"] += unauthorized; totals["crashed"] += crashed; totals["fivexx"] += fivexx
    if injected:
        totals["faults"][kind] = totals["faults"].get(kind, 0) + injected
    print(f"  {kind}: {injected} injected, {requests} requests, lost {lost}, wrong {wrong}, unauthorized {unauthorized}, "
          f"crashed {crashed}, 5xx {fivexx} {note}", flush=True)


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw).stdout


# ---------------------------------------------------------------- the cluster

def manifest():
    s = open(os.path.join(ROOT, "Manifests/quickstart-cpu.yaml")).read()
    s = s.replace("  decode:\n    replicas: 1", "  decode:\n    replicas: 2")
    path = os.path.join(WORK, "manifest.yaml")
    open(path, "w").write(s)
    return path


up_dir = os.path.join(WORK, "up")
up = subprocess.Popen([BIN, "up", "-f", manifest(), "--agents", "3", "--port", "0", "--dir", up_dir],
                      stdout=open(os.path.join(WORK, "up.log"), "w"), stderr=subprocess.STDOUT)
for _ in range(240):
    if os.path.exists(os.path.join(up_dir, "gateway.port")):
        break
    if up.poll() is not None:
        sys.exit("ampd up exited; see " + os.path.join(WORK, "up.log"))
    time.sleep(0.5)
PORT = int(open(os.path.join(up_dir, "gateway.port")).read())
KEY = [l for l in open(os.path.join(up_dir, "api-keys.csv")) if not l.startswith("#")][0].split(",")[0].strip()
CTL = os.path.join(up_dir, "controller")
CLIENT = json.load(open(os.path.join(CTL, "client.json")))
ADMIN = CLIENT["token"]


def chat(messages, session=None, max_tokens=6, key=KEY, body=None, path="/v1/chat/completions", timeout=120):
    """(status, parsed body or text); status 0 when no HTTP answer came."""
    data = body if body is not None else json.dumps({"messages": messages, "max_tokens": max_tokens}).encode()
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = "Bearer " + key
    if session:
        headers["x-session-id"] = session
    try:
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
        c.request("POST", path, body=data, headers=headers)
        r = c.getresponse()
        text = r.read().decode("utf-8", "replace")
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text
    except Exception as e:
        return 0, str(e)


def controller(method, path, body=None, token="admin", content="application/json"):
    """(status, text, headers); `token` "admin" is the current controller's admin token, None none."""
    if token == "admin":
        token = ADMIN
    host, port = CLIENT["server"].replace("https://", "").rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=CLIENT["certificateAuthority"])
    ctx.check_hostname = False
    try:
        c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)
        headers = {"content-type": content}
        if token:
            headers["authorization"] = "Bearer " + token
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace"), dict(r.getheaders())
    except Exception as e:
        return 0, str(e), {}


def alive():
    return up.poll() is None


def agent_pid(label):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            args = open(f"/proc/{pid}/cmdline").read().split("\0")
        except OSError:
            continue
        if len(args) > 1 and args[1] in ("agent", "gateway") and any(a.endswith("/" + label) or a == os.path.join(up_dir, label) for a in args):
            return int(pid)
    return None


def gateway_pid():
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                args = open(f"/proc/{pid}/cmdline").read().split("\0")
            except OSError:
                continue
            if len(args) > 1 and args[1] == "gateway" and os.path.join(up_dir, "gateway.port") in args:
                return int(pid)
    return None


def assignments():
    status, text, _ = controller("GET", "/apis/ampd.dev/v1alpha1/namespaces/default/servingdeployments/smollm2")
    return {a["instance"]: a["node"] for a in json.loads(text)["status"]["assignments"]} if status == 200 else {}


# ---------------------------------------------------------------- sessions under faults

print(f"# ampd chaos: {os.cpu_count()} cores, cluster at 127.0.0.1:{PORT} (3 agents: 1 prefill, 2 decode instances)", flush=True)
SESSIONS = 8
journal = []            # (session, started, ended, status, messages, answer)
lock = threading.Lock()
stop = threading.Event()


def session(s):
    history = []
    r = 0
    while not stop.is_set():
        r += 1
        messages = history + [{"role": "user", "content": f"Give one short fact about topic {s}, part {r}."}]
        t0 = time.time()
        status, body = chat(messages, session=f"chaos-{s}")
        answer = body["choices"][0]["message"]["content"] if status == 200 else None
        with lock:
            journal.append((s, t0, time.time(), status, messages, answer))
        if answer is not None:
            history = messages + [{"role": "assistant", "content": answer}]
            if len(history) > 16:            # keep contexts bounded: start the conversation again
                history = []
        else:
            time.sleep(0.2)


workers = [threading.Thread(target=session, args=(s,), daemon=True) for s in range(SESSIONS)]
for w in workers:
    w.start()
time.sleep(10)


def recovered_after(t, deadline=60):
    """Whether every session has a successful round that started after t (within the deadline)."""
    end = time.time() + deadline
    while time.time() < end:
        with lock:
            ok = {s for (s, t0, _, st, _, _) in journal if t0 > t and st == 200}
        if len(ok) == SESSIONS:
            return 0
        time.sleep(0.5)
    with lock:
        ok = {s for (s, t0, _, st, _, _) in journal if t0 > t and st == 200}
    return SESSIONS - len(ok)


def kill_agent_of(role):
    nodes = assignments()
    victim = next((n for i, n in nodes.items() if f"-{role}-" in i), None)
    label = "agent-" + victim.split("-")[-1]
    pid = agent_pid(label)
    os.kill(pid, signal.SIGKILL)
    return time.time()


for kind, action in [("agent SIGKILL (decode)", lambda: kill_agent_of("decode")),
                     ("agent SIGKILL (prefill)", lambda: kill_agent_of("prefill")),
                     ("gateway SIGKILL", lambda: (os.kill(gateway_pid(), signal.SIGKILL), time.time())[1])]:
    with lock:
        before = len(journal)
    t = action()
    lost = recovered_after(t)
    time.sleep(3)
    with lock:
        window = journal[before:]
    fivexx = sum(1 for j in window if j[3] >= 500)
    interrupted = sum(1 for j in window if j[3] == 0)
    row(kind, injected=1, requests=len(window), lost=lost, fivexx=fivexx,
        note=f"(failed in flight: {fivexx} 5xx, {interrupted} connections cut; every session served again)")

stop.set()
for w in workers:
    w.join()
# Never a wrong answer with a 200: every answered round equals the same messages sent fresh.
wrong = 0
answered = [j for j in journal if j[3] == 200]
for (s, _, _, _, messages, answer) in answered:
    status, body = chat(messages)
    if status != 200 or body["choices"][0]["message"]["content"] != answer:
        wrong += 1
totals["sessions"] = SESSIONS
row("rounds checked against fresh requests", requests=len(answered), wrong=wrong,
    note=f"({len(answered)} answered rounds of {SESSIONS} sessions, each resent without a session)")

# ---------------------------------------------------------------- 150 concurrent clients

results = []


def one(i):
    results.append(chat([{"role": "user", "content": f"Count to {i % 7 + 2}."}], session=f"burst-{i}", max_tokens=8)[0])


threads = [threading.Thread(target=one, args=(i,)) for i in range(150)]
for t in threads:
    t.start()
for t in threads:
    t.join()
row("150 concurrent clients", requests=len(results), fivexx=sum(1 for s in results if s >= 500),
    crashed=0 if alive() else 1, note="(statuses: " + ", ".join(f"{k}×{results.count(k)}" for k in sorted(set(results))) + ")")

# ---------------------------------------------------------------- hostile inputs

M = '"messages":[{"role":"user","content":"Hi"}]'
gateway_corpus = [
    b"not json", b"[1,2]", b"{}", b'{"messages":[]}', b'{"messages":"hi"}', b'{"messages":[{"content":"x"}]}',
    b'{"messages":[{"role":"wizard","content":"x"}]}', b'{"messages":[{"role":"user","content":5}]}',
    b'{"messages":[{"role":"tool","content":"x"}]}', ('{' + M + ',"temperature":-1}').encode(), ('{' + M + ',"top_p":7}').encode(),
    ('{' + M + ',"max_tokens":900000}').encode(), ('{' + M + ',"n":3}').encode(), ('{' + M + ',"stop":5}').encode(),
    ('{' + M + ',"logprobs":true,"top_logprobs":99}').encode(), ('{' + M + ',"tool_choice":"required"}').encode(),
    ('{' + M + ',"response_format":{"type":"json_schema"}}').encode(), ('{' + M + ',"frobnicate":1}').encode(),
    ('{' + M + ',"model":"gpt-4o"}').encode(), ('{' + M + ',"stream":"yes"}').encode(), b'{"messages":[{"role":"user","content":"' + b"\xff\xfe" + b'"}]}',
    b'{"messages":[{"role":"user","content":"x"}],"messages":[]}', b"{" * 10000, b'{"messages":[' + b'{"role":"user","content":"a"},' * 3000 + b'{"role":"user","content":"a"}]}',
    b"x" * (9 << 20), b'{"max_tokens":4,"messages":[{"role":"user","content":"' + b"word " * 5000 + b'"}]}',
    ('{' + M + ',"tools":[{"type":"function","function":{"name":"a b"}}]}').encode(),
    ('{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"no"}}]},'
     '{"role":"tool","tool_call_id":"c","content":"1"}]}').encode(),
]
def oversized(size=9 << 20):
    """Sends a body past the gateway's limit, reading the answer as soon as it comes (the
    gateway answers 413 and closes without reading the rest)."""
    import select
    s = socket.create_connection(("127.0.0.1", PORT), timeout=30)
    s.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
              f"Content-Length: {size}\r\n\r\n".encode())
    chunk, sent = b"x" * 65536, 0
    try:
        while sent < size:
            if select.select([s], [], [], 0)[0]:
                break
            s.sendall(chunk)
            sent += len(chunk)
        data = s.recv(4096)
        return int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.1") else 0
    except OSError:
        return 0
    finally:
        s.close()


gateway_corpus.remove(b"x" * (9 << 20))
codes = [chat(None, body=b)[0] for b in gateway_corpus] + [oversized()]
codes += [chat(None, key="wrong-key-0123456789")[0] for _ in range(5)]
codes += [chat(None, body=b'{"prompt":[1,2]}', path="/v1/completions")[0], chat(None, body=b'{"tokens":[-1]}', path="/detokenize")[0]]
totals["bad"] += len(codes)
row("malformed requests to the gateway", requests=len(codes), fivexx=sum(1 for c in codes if c >= 500 or c == 0),
    crashed=0 if chat([{"role": "user", "content": "Hi"}], max_tokens=2)[0] == 200 else 1,
    note="(statuses: " + ", ".join(f"{k}×{codes.count(k)}" for k in sorted(set(codes))) + ")")

path = "/apis/ampd.dev/v1alpha1/namespaces/default/servingdeployments/chaos"
bomb = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n" for i in range(8))
controller_corpus = [("PUT", path, bomb, "application/yaml"), ("PUT", path, "x" * (10 << 20), "application/json"),
                     ("PUT", path, '{"apiVersion":"ampd.dev/v1alpha1","apiVersion":"x"}', "application/json"),
                     ("PUT", path, "spec: {decode: {replicas: 1.5}}", "application/yaml"), ("PUT", path, "{", "application/json"),
                     ("PUT", path, "- [", "application/yaml"), ("PUT", path, "[" * 5000, "application/json"),
                     ("PUT", "/apis/ampd.dev/v1alpha1/nodes/x/heartbeat", "{}", "application/json"),
                     ("POST", "/apis/ampd.dev/v1alpha1/nodes", '{"name":"UPPER_case","capacity":{}}', "application/json"),
                     ("POST", "/apis/ampd.dev/v1alpha1/certificatesigningrequests", '{"name":"x","role":"node","csrPEM":"garbage"}', "application/json")]
ccodes = [controller(m, p, b.encode(), content=ct)[0] for (m, p, b, ct) in controller_corpus]
totals["bad"] += len(ccodes)
row("malformed requests to the controller", requests=len(ccodes), fivexx=sum(1 for c in ccodes if c >= 500 or c == 0),
    crashed=0 if controller("GET", "/readyz", token=None)[0] == 200 else 1,
    note="(statuses: " + ", ".join(f"{k}×{ccodes.count(k)}" for k in sorted(set(ccodes))) + ")")

# ---------------------------------------------------------------- identities

pki = os.path.join(WORK, "pki")
os.makedirs(pki, exist_ok=True)


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def ext(name, body):
    p = os.path.join(pki, name)
    open(p, "w").write(body)
    return p


client_ext = ext("client.ext", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")
openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{pki}/self.key", "-out", f"{pki}/self.crt",
        "-subj", "/CN=self", "-days", "1")
openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{pki}/other-ca.key", "-out", f"{pki}/other-ca.crt",
        "-subj", "/CN=other-ca", "-days", "1")
openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{pki}/other.key", "-out", f"{pki}/other.csr", "-subj", "/CN=node-x")
openssl("x509", "-req", "-in", f"{pki}/other.csr", "-CA", f"{pki}/other-ca.crt", "-CAkey", f"{pki}/other-ca.key", "-CAcreateserial",
        "-out", f"{pki}/other.crt", "-days", "1", "-extfile", client_ext)
# A certificate of this cluster's CA without the client-auth purpose (server only).
openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{pki}/server.key", "-out", f"{pki}/server.csr", "-subj", "/CN=node-y")
openssl("x509", "-req", "-in", f"{pki}/server.csr", "-CA", f"{CTL}/ca.crt", "-CAkey", f"{CTL}/ca.key", "-CAcreateserial", "-out", f"{pki}/server.crt",
        "-days", "1", "-extfile", ext("server.ext", "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"))
# A revoked one: a node enrolled with the bootstrap token, then deleted.
bootstrap = [l.split(",")[0] for l in open(f"{CTL}/tokens.csv") if l.strip().endswith(",node")][0]
status, _, headers = controller("POST", "/apis/ampd.dev/v1alpha1/nodes", json.dumps(
    {"name": "chaos-revoked", "capacity": {"accelerator": "none", "count": 1, "memoryBytes": 0}}).encode(), token=bootstrap)
credential = {k.lower(): v for k, v in headers.items()}.get("ampd-node-credential")
openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{pki}/revoked.key", "-out", f"{pki}/revoked.csr",
        "-subj", "/CN=chaos-revoked")
status, text, _ = controller("POST", "/apis/ampd.dev/v1alpha1/certificatesigningrequests", json.dumps(
    {"name": "chaos-revoked", "role": "node", "csrPEM": open(f"{pki}/revoked.csr").read()}).encode(), token=credential)
open(f"{pki}/revoked.crt", "w").write(json.loads(text)["certificatePEM"])
controller("DELETE", "/apis/ampd.dev/v1alpha1/nodes/chaos-revoked")
time.sleep(12)   # agents refresh their revocation list with their heartbeats

agent_dir = os.path.join(up_dir, "agent-0")
identities = {"no certificate": None, "self-signed": ("self.crt", "self.key"), "another CA's": ("other.crt", "other.key"),
              "the CA's own": (f"{CTL}/ca.crt", f"{CTL}/ca.key"), "the controller's serving": (f"{CTL}/tls.crt", f"{CTL}/tls.key"),
              "server-only of this CA": ("server.crt", "server.key"), "revoked": ("revoked.crt", "revoked.key")}
valid = (f"{agent_dir}/agent.crt", f"{agent_dir}/agent.key")


def context(identity):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(f"{CTL}/ca.crt")
    if identity:
        cert, key = identity
        ctx.load_cert_chain(cert if cert.startswith("/") else f"{pki}/{cert}", key if key.startswith("/") else f"{pki}/{key}")
    return ctx


nodes = json.loads(controller("GET", "/apis/ampd.dev/v1alpha1/nodes")[1])["items"]
endpoints = next(n["spec"]["endpoints"] for n in nodes if n["metadata"]["name"] == "local-0")


def instance_api(identity):
    """True when the instance API served the identity (any answer but a refusal)."""
    try:
        c = http.client.HTTPSConnection("127.0.0.1", endpoints["api"], context=context(identity), timeout=10)
        c.request("POST", "/v1/instances/none/generate", body=b"{}", headers={"content-type": "application/json"})
        return c.getresponse().status != 403
    except Exception:
        return False


def kv_endpoint(identity):
    """True when the KV endpoint answered a PROBE frame for the identity."""
    pool, tenant = b"default/smollm2", b"t"
    payload = struct.pack(">H", len(pool)) + pool + struct.pack(">H", len(tenant)) + tenant + struct.pack(">IQ", 1, 1)
    frame = struct.pack(">IBI", len(payload) + 5, 0x03, 1) + payload
    try:
        with socket.create_connection(("127.0.0.1", endpoints["kv"]), timeout=10) as raw:
            with context(identity).wrap_socket(raw) as s:
                s.sendall(frame)
                return len(s.recv(5)) == 5
    except Exception:
        return False


tried = unauthorized = 0
for name, identity in identities.items():
    for probe in (instance_api, kv_endpoint):
        tried += 1
        if probe(identity):
            unauthorized += 1
            print(f"    ACCEPTED {name} certificate on {probe.__name__}")
served = instance_api(valid) and kv_endpoint(valid)
for token, method, p, why in [(None, "GET", "/apis/ampd.dev/v1alpha1/nodes", "no token"), ("wrong-token-0123456789abcdef", "GET", "/apis/ampd.dev/v1alpha1/nodes", "wrong token"),
                              (bootstrap, "PUT", "/apis/ampd.dev/v1alpha1/nodes/local-0/heartbeat", "bootstrap as a node"),
                              (bootstrap, "DELETE", path, "bootstrap deleting"),
                              ([l.split(",")[0] for l in open(f"{CTL}/tokens.csv") if l.strip().endswith(",reader")][0], "PUT", path, "reader writing")]:
    tried += 1
    code = controller(method, p, b"{}", token=token)[0]
    if code not in (401, 403):
        unauthorized += 1
        print(f"    ACCEPTED {why} on the controller: {code}")
tried += 1
if chat([{"role": "user", "content": "Hi"}], key=None)[0] != 401:
    unauthorized += 1
totals["bad"] += tried
row("identity matrix (instance API, KV endpoint, controller, gateway)", requests=tried, unauthorized=unauthorized,
    note=f"(a valid agent certificate served: {served}; expired and not-yet-valid certificates not tried)")

# ---------------------------------------------------------------- controller SIGKILL under writes

up.send_signal(signal.SIGINT)
up.wait(timeout=60)
cdir = os.path.join(WORK, "controller")
proc = None


def start_controller():
    global proc, CLIENT, ADMIN
    if os.path.exists(f"{cdir}/client.json"):
        os.remove(f"{cdir}/client.json")
    proc = subprocess.Popen([BIN, "controller", "--data-dir", cdir, "--port", "0"], stdout=open(f"{WORK}/controller.log", "a"), stderr=subprocess.STDOUT)
    for _ in range(200):
        if os.path.exists(f"{cdir}/client.json"):
            try:
                CLIENT = json.load(open(f"{cdir}/client.json"))
                ADMIN = CLIENT["token"]
                if controller("GET", "/readyz", token=None)[0] == 200:
                    return
            except ValueError:
                pass
        time.sleep(0.1)
    raise SystemExit("the controller did not start")


start_controller()
doc = open(manifest()).read().replace("name: smollm2", "name: chaos")
acked = []          # (seq, resourceVersion)
writes = kills = 0
end = time.time() + 60
next_kill = time.time() + 4
while time.time() < end:
    seq = writes + 1
    body = doc.replace("app: quickstart", f"app: quickstart\n    seq: \"{seq}\"")
    code, text, _ = controller("PUT", "/apis/ampd.dev/v1alpha1/namespaces/default/servingdeployments/chaos", body.encode(), content="application/yaml")
    writes += 1
    if code in (200, 201):
        acked.append((seq, int(json.loads(text)["metadata"]["resourceVersion"])))
    if time.time() >= next_kill:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        start_controller()
        next_kill = time.time() + 4
code, text, _ = controller("GET", "/apis/ampd.dev/v1alpha1/namespaces/default/servingdeployments/chaos")
final = int(json.loads(text)["metadata"]["labels"]["seq"]) if code == 200 else 0
monotonic = all(b[1] > a[1] for a, b in zip(acked, acked[1:]))
lost = 0 if acked and final >= acked[-1][0] and monotonic else 1
proc.send_signal(signal.SIGTERM)
proc.wait()
row("controller SIGKILL under writes", injected=kills, requests=writes, lost=lost,
    note=f"({len(acked)} acknowledged; the last acknowledged, seq {acked[-1][0] if acked else '-'}, is what the store holds (seq {final}); resourceVersions rising: {monotonic})")

# ---------------------------------------------------------------- the table

print()
print("| fault | injected | requests | lost | silently wrong | accepted-unauthorized | crashed | 5xx | notes |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(str(x) for x in r) + " |")
faults = ", ".join(f"{k} {v}" for k, v in totals["faults"].items())
print()
print(f"HEADLINE: {totals['sessions']} sessions held through faults ({faults}); {totals['requests']} requests; {totals['bad']} bad inputs and identities tried — "
      f"lost {totals['lost']}, silently wrong {totals['wrong']}, accepted-unauthorized {totals['unauthorized']}, crashed {totals['crashed']}, 5xx {totals['fivexx']}")
