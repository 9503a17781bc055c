#!/usr/bin/env python3
"""Lists import cycles between the library's files (src/, the binary excluded).

An edge a -> b means file a names an item of file b through a `crate::`, `super::`,
`self::` or child-module path (in a `use` or inline). A module's own `mod` declarations
and its `pub use` re-exports (a facade) are not edges; a path through a re-export leads
to the file that defines the item.
Prints each cycle (a strongly connected component of more than one file) and exits 1 if
there is any. Run: `python3 tools/import_cycles.py`.

It also checks the layering rules of ARCHITECTURE.md: the files of a lower layer name
nothing of the layers above it (`LAYER_RULES`, the client's layers and the emulator's,
`EMULATOR_LAYERS`), and no file outside `connection/` names a socket type
(`SOCKET_TYPES`), the emulator's socket side aside (`SOCKET_ALLOWED`).
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
EXCLUDE = ("bin",)

# (files under this prefix, may not depend on files under these prefixes)
LAYER_RULES = [
    ("codec/", ("rpc/", "connection/", "link/", "dispatch.rs", "client.rs", "subscription.rs")),
    ("rpc/", ("connection/", "link/", "dispatch.rs", "client.rs", "subscription.rs")),
    ("connection/", ("link/", "client.rs", "subscription.rs")),
    ("dispatch.rs", ("connection/", "link/", "client.rs", "subscription.rs")),
    ("link/", ("client.rs",)),
]

# The emulator's layers, lowest first (ARCHITECTURE.md, "The emulator"): a file of one
# layer may not depend on a file of any layer after it.
EMULATOR_LAYERS = [
    # shared leaves: texts, topics, policies, recipes, the operation table, public values
    ("emulator/common/",),
    # a connection as the services see it: replies, stream handles, the outbound queue
    ("emulator/conn/",),
    # each area's data and the operations on it alone
    ("emulator/stores/",),
    # State (every store, the components, the connections) and CallContext
    ("emulator/state.rs",),
    # the typed registry, the areas' handlers, the dispatcher
    ("emulator/registry.rs", "emulator/handlers/", "emulator/dispatch.rs"),
    # the socket side: accepting, serving a connection, fault-injection hooks
    ("emulator/listener.rs", "emulator/server.rs", "emulator/fault.rs"),
    # the public facade: Emulator, its builder and sub-handles
    ("emulator/mod.rs", "emulator/builder.rs", "emulator/handles.rs"),
]
for i, layer in enumerate(EMULATOR_LAYERS):
    above = tuple(p for upper in EMULATOR_LAYERS[i + 1 :] for p in upper)
    for prefix in layer:
        if above:
            LAYER_RULES.append((prefix, above))
SOCKET_TYPES = re.compile(r"\b(UnixStream|UnixListener|std::net::Shutdown|os::unix::net)\b")
# The files that may name a socket type: the client's connection, and the emulator's
# socket side (its connections, listener, server, fault hooks; its facade wakes the accept
# loop on stop). Its stores, state, handlers and leaves never do.
SOCKET_ALLOWED = (
    "connection/",
    "emulator/conn/",
    "emulator/listener.rs",
    "emulator/server.rs",
    "emulator/fault.rs",
    "emulator/mod.rs",
)


def module_path(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib"):
        rel = rel[:-1]
    return rel


def resolve(files, reexports, segs, depth=0):
    """The file defining the item `segs` names: the longest module prefix of `segs`,
    following a `pub use` re-export of the next name in that module's file."""
    for n in range(len(segs), -1, -1):
        key = tuple(segs[:n])
        if key in files:
            rest = segs[n:]
            target = reexports.get(key, {}).get(rest[0]) if rest else None
            if target is not None and depth < 8:
                return resolve(files, reexports, target, depth + 1)
            return files[key]
    return None


def main():
    files = {}
    for dirpath, _, names in os.walk(ROOT):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, ROOT)
                if rel.split(os.sep)[0] in EXCLUDE or rel.endswith("tests.rs"):
                    continue
                files[tuple(module_path(path))] = rel
    edges = {f: set() for f in files.values()}
    # `pub use` re-exports of each module: name -> absolute path of the item.
    reexports = {}
    for mod, rel in files.items():
        text = re.sub(r"//.*", "", open(os.path.join(ROOT, rel)).read())
        names = {}
        for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", text, re.S):
            for p in expand(m.group(1).replace("\n", " ")):
                segs = [x.strip() for x in p.split("::") if x.strip()]
                names[segs[-1]] = absolute(files, mod, rel, segs)
        reexports[mod] = {k: v for k, v in names.items() if v is not None}
    for mod, rel in files.items():
        text = open(os.path.join(ROOT, rel)).read()
        text = text.split("#[cfg(test)]\nmod tests")[0]
        text = re.sub(r"//.*", "", text)
        # Expand `use a::{b, c::{d}}` groups into paths.
        paths = []
        # A `pub use` re-export is a facade, not a dependency: it is followed when another
        # file names the item, but is no edge of its own.
        text = re.sub(r"\bpub(?:\([^)]*\))?\s+use\s+[^;]+;", "", text)
        for m in re.finditer(r"\buse\s+([^;]+);", text, re.S):
            paths += expand(m.group(1).replace("\n", " "))
        paths += re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", text)
        for p in paths:
            segs = [s.strip() for s in p.split("::") if s.strip()]
            target = absolute(files, mod, rel, segs)
            if target is None:
                continue
            dest = resolve(files, reexports, target)
            if dest and dest != rel:
                edges[rel].add(dest)
    cycles = sccs(edges)
    for c in cycles:
        print("cycle:", " <-> ".join(sorted(c)))
    if not cycles:
        print(f"no import cycles between the {len(edges)} library files")
    broken = layer_violations(edges) + socket_violations(files)
    for line in broken:
        print(line)
    if not broken:
        print("layering rules hold (lower layers name nothing above them; sockets only in "
              "connection/ and the emulator's socket side)")
    return 1 if cycles or broken else 0


def layer_violations(edges):
    out = []
    for src, dests in sorted(edges.items()):
        for prefix, forbidden in LAYER_RULES:
            if src.startswith(prefix):
                for d in sorted(dests):
                    if d.startswith(forbidden):
                        out.append(f"layer: {src} depends on {d}")
    return out


def socket_violations(files):
    out = []
    for rel in sorted(files.values()):
        if rel.replace(os.sep, "/").startswith(SOCKET_ALLOWED):
            continue
        text = re.sub(r"//.*", "", open(os.path.join(ROOT, rel)).read())
        if SOCKET_TYPES.search(text):
            out.append(f"socket: {rel} names a socket type outside connection/")
    return out


def absolute(files, mod, rel, segs):
    """The absolute module path of `segs` as written in module `mod`, or None for a path
    outside the crate."""
    if not segs:
        return None
    if segs[0] == "crate":
        return segs[1:]
    if segs[0] in ("super", "self"):
        # Module a::b (file a/b.rs or a/b/mod.rs): `super` is a, `self` is a::b.
        base = list(mod)
        i = 0
        while i < len(segs) and segs[i] in ("super", "self"):
            if segs[i] == "super":
                base = base[:-1]
            i += 1
        return base + segs[i:]
    # A child module named without `self::` (uniform paths).
    if tuple(list(mod) + [segs[0]]) in files:
        return list(mod) + segs
    return None


def expand(tree):
    tree = tree.strip()
    if "{" not in tree:
        return [t.strip().split(" as ")[0] for t in tree.split(",") if t.strip()]
    i = tree.index("{")
    prefix = tree[:i]
    inner = tree[i + 1 : tree.rindex("}")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        p = p.strip()
        if not p:
            continue
        if p == "self":
            out.append(prefix.rstrip(":"))
        else:
            out += [prefix + q for q in expand(p)]
    return out


def sccs(edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    sys.exit(main())
