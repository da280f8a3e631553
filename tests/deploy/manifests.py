#!/usr/bin/python3
"""manifests.py — the deploy recipes cannot drift from the code.

Every Kubernetes manifest under deploy/k8s must parse, the kustomization
must list exactly the manifests beside it, and every command a container,
probe or systemd unit runs must name a rewire binary, a subcommand and
flags that binary's --help lists, with ports its --help names; services,
container ports, --bind and --connect endpoints must agree. The
Containerfile's runtime packages must be exactly those that provide the
built binaries' shared libraries (readelf NEEDED, resolved by ldd, owned
per dpkg), less what debian:12 always has.

usage: manifests.py BUILD_DIR [--add-domain]
  --add-domain checks deploy/k8s/templates/add-domain-job.yaml alone (it
  uses issue 5's rewire-worker --domain/--data); without it, everything else.
Prints what it checked; exits 1 listing every problem.
"""
import os
import re
import shlex
import subprocess
import sys

import yaml

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINS = ("rewire", "rewire-coordinator", "rewire-worker", "rewire-router")
SUBCOMMANDS = {"rewire-coordinator": ("serve", "prepare", "health"),
               "rewire-worker": ("health",), "rewire-router": ("health",)}
BASE_PACKAGES = {"libc6"}  # in every debian:12 image
problems = []
checked = {"commands": 0, "flags": 0, "ports": 0, "manifests": 0}


def problem(where, text):
    problems.append(f"{where}: {text}")


_help = {}


def help_text(build, binary, sub=None):
    key = (binary, sub)
    if key not in _help:
        argv = [os.path.join(build, binary)] + ([sub] if sub else []) + ["--help"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        _help[key] = r.stdout + r.stderr if r.returncode == 0 else ""
    return _help[key]


def has_word(text, word):
    return re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", text) is not None


def endpoint_port(ep):
    m = re.fullmatch(r"tcp://([^:/]+):(\d+)", ep)
    return (m.group(1), int(m.group(2))) if m else None


def check_command(build, where, argv, env, services, bound_ports=None):
    """One command line. Returns (binary, the port it binds or None)."""
    argv = [env.get(a, a) for a in argv]
    if argv and argv[0] == "exec":
        argv = argv[1:]
    if not argv:
        problem(where, "an empty command")
        return None, None
    binary = os.path.basename(argv[0])
    if binary not in BINS:
        problem(where, f"runs {argv[0]}, not a rewire binary")
        return None, None
    if not os.access(os.path.join(build, binary), os.X_OK):
        problem(where, f"{binary} is not built in {build}")
        return None, None
    checked["commands"] += 1
    sub = None
    rest = argv[1:]
    if rest and not rest[0].startswith("-"):
        sub = rest[0]
        if sub not in SUBCOMMANDS.get(binary, ()) or not has_word(help_text(build, binary), sub):
            problem(where, f"{binary} has no subcommand '{sub}' in its --help")
            return binary, None
        rest = rest[1:]
    text = help_text(build, binary, sub if sub == "health" else None)
    if sub == "serve":
        text = help_text(build, binary)
    if not text:
        problem(where, f"{binary} {sub or ''} --help failed")
        return binary, None
    bind = None
    for i, tok in enumerate(rest):
        if tok.startswith("--"):
            checked["flags"] += 1
            if not has_word(text, tok):
                problem(where, f"{binary}{' ' + sub if sub else ''} has no flag {tok} in its --help")
        if i > 0 and rest[i - 1] in ("--bind", "--connect"):
            hp = endpoint_port(tok)
            if not hp:
                if not re.fullmatch(r"\$[({]?\w+[)}]?", tok):
                    problem(where, f"{rest[i - 1]} {tok} is not tcp://HOST:PORT")
                continue
            host, port = hp
            checked["ports"] += 1
            if not any(str(port) in help_text(build, b) for b in BINS[1:]):
                problem(where, f"port {port} is in no binary's --help")
            if rest[i - 1] == "--bind":
                bind = port
                if host not in ("0.0.0.0", "*", "127.0.0.1"):
                    problem(where, f"binds {host}, not this host")
            elif host not in ("127.0.0.1", "localhost"):
                if host not in services:
                    problem(where, f"connects to {host}, which no Service names")
                elif port not in services[host]:
                    problem(where, f"connects to {host}:{port}; the Service has {services[host]}")
            elif bound_ports is not None and port not in bound_ports:
                problem(where, f"asks 127.0.0.1:{port}, which this container does not bind")
    return binary, bind


def probe_argv(cmd):
    if len(cmd) == 3 and cmd[0] in ("sh", "/bin/sh") and cmd[1] == "-c":
        return [t.replace('"', "") for t in shlex.split(cmd[2])]
    return cmd


def load_k8s(paths):
    docs = []
    for p in paths:
        with open(p) as f:
            try:
                for d in yaml.safe_load_all(f):
                    if d is None:
                        continue
                    checked["manifests"] += 1
                    for k in ("apiVersion", "kind"):
                        if k not in d:
                            problem(p, f"a document without {k}")
                    if "name" not in d.get("metadata", {}) and d.get("kind") != "Kustomization":
                        problem(p, f"a {d.get('kind')} without metadata.name")
                    docs.append((p, d))
            except yaml.YAMLError as e:
                problem(p, f"does not parse: {e}")
    return docs


def check_k8s(build, add_domain):
    k8s = os.path.join(SRC, "deploy", "k8s")
    kust_path = os.path.join(k8s, "kustomization.yaml")
    template = os.path.join(k8s, "templates", "add-domain-job.yaml")
    with open(kust_path) as f:
        kust = yaml.safe_load(f)
    listed = [os.path.join(k8s, r) for r in kust.get("resources", [])]
    present = sorted(os.path.join(k8s, f) for f in os.listdir(k8s)
                     if f.endswith(".yaml") and f != "kustomization.yaml")
    if sorted(listed) != present:
        problem(kust_path, f"lists {sorted(map(os.path.basename, listed))}, the folder has "
                f"{[os.path.basename(p) for p in present]}")
    docs = load_k8s(present)
    tdocs = load_k8s([template])
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for _, d in docs if d.get("kind") == "ConfigMap"}
    services = {}
    for p, d in docs:
        if d.get("kind") == "Service":
            services[d["metadata"]["name"]] = [pt["port"] for pt in d["spec"].get("ports", [])]
    workloads = tdocs if add_domain else docs
    pods = {}
    for p, d in workloads:
        if d.get("kind") not in ("Deployment", "StatefulSet", "Job"):
            continue
        tmpl = d["spec"]["template"]
        labels = tmpl.get("metadata", {}).get("labels", {})
        for c in tmpl["spec"]["containers"]:
            where = f"{os.path.basename(p)} {d['kind']}/{d['metadata']['name']} {c['name']}"
            env = {}
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("configMapKeyRef")
                if ref:
                    val = configmaps.get(ref["name"], {}).get(ref["key"])
                    if val is None:
                        problem(where, f"env {e['name']} from a ConfigMap key that does not exist")
                        continue
                    env[f"$({e['name']})"] = env[f"${e['name']}"] = val
            ports = {cp.get("name"): cp["containerPort"] for cp in c.get("ports", [])}
            argv = list(c.get("command", [])) + list(c.get("args", []))
            binary, bind = check_command(build, where, argv, env, services)
            if set(ports.values()) != ({bind} if bind else set()):
                problem(where, f"declares ports {sorted(ports.values())} but binds {bind}")
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                pr = c.get(kind)
                if not pr:
                    continue
                if "exec" not in pr:
                    problem(where, f"{kind} is not a command (the health check)")
                    continue
                pargv = probe_argv(pr["exec"]["command"])
                pbin, _ = check_command(build, f"{where} {kind}", pargv, env, services,
                                        set(ports.values()))
                if "health" not in pargv:
                    problem(where, f"{kind} does not call a health subcommand")
                elif pbin not in (binary, "rewire-worker"):
                    problem(where, f"{kind} asks with {pbin}, the container runs {binary}")
            if binary in ("rewire-coordinator", "rewire-router") and not c.get("livenessProbe"):
                problem(where, "no liveness probe")
            pods[tuple(sorted(labels.items()))] = ports
    if add_domain:
        return
    for p, d in docs:
        if d.get("kind") != "Service":
            continue
        sel = d["spec"].get("selector", {})
        match = [ports for labels, ports in pods.items() if set(sel.items()) <= set(labels)]
        if len(match) != 1:
            problem(p, f"Service {d['metadata']['name']} selects {len(match)} pod templates")
            continue
        for pt in d["spec"].get("ports", []):
            tp = pt.get("targetPort", pt["port"])
            got = match[0].get(tp) if isinstance(tp, str) else tp
            if got != pt["port"] or (isinstance(tp, int) and tp not in match[0].values()):
                problem(p, f"Service {d['metadata']['name']} port {pt['port']} -> {tp}: "
                        f"the pod has {match[0]}")


def check_systemd(build):
    d = os.path.join(SRC, "deploy", "systemd")
    envfile = {}
    with open(os.path.join(d, "rewire.env")) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.strip().split("=", 1)
                envfile["${" + k + "}"] = v
    units = sorted(f for f in os.listdir(d) if f.endswith(".service"))
    if units != ["rewire-coordinator.service", "rewire-router.service", "rewire-worker@.service"]:
        problem(d, f"units {units}")
    for u in units:
        env, execs = dict(envfile), []
        with open(os.path.join(d, u)) as f:
            text = f.read()
        for key in ("Restart=", "NoNewPrivileges=yes", "ProtectSystem=strict"):
            if key not in text:
                problem(u, f"no {key}")
        for line in text.splitlines():
            if line.startswith("Environment="):
                for kv in shlex.split(line[len("Environment="):]):
                    k, v = kv.split("=", 1)
                    env["${" + k + "}"] = v
            if line.startswith(("ExecStart=", "ExecStartPost=")):
                execs.append(line.split("=", 1)[1])
        for i, cmd in enumerate(execs):
            argv = shlex.split(cmd)
            if argv[:2] == ["/bin/sh", "-c"]:
                argv = [t for t in re.split(r"[;&|]+|\b(?:until|do|done|sleep \d+)\b", argv[2])]
                argv = shlex.split(next(t for t in argv if "rewire-" in t))
            binary, _ = check_command(build, f"{u} Exec #{i + 1}", argv, env, {})
            if binary is None:
                continue
            if not argv[0].startswith("/usr/local/bin/"):
                problem(u, f"runs {argv[0]}, not /usr/local/bin (where the Containerfile and README put it)")
    if subprocess.run(["sh", "-c", "command -v systemd-analyze"], capture_output=True).returncode == 0:
        r = subprocess.run(["systemd-analyze", "verify"] + [os.path.join(d, u) for u in units],
                           capture_output=True, text=True)
        for line in (r.stdout + r.stderr).splitlines():
            if "is not executable" not in line and line.strip():
                problem("systemd-analyze verify", line)
        checked["systemd-analyze"] = "ran"


def needed_packages(build):
    pkgs = {}
    for b in BINS:
        path = os.path.join(build, b)
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                            subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout)
        resolved = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(
            ["ldd", path], capture_output=True, text=True).stdout, re.M))
        for so in needed:
            lib = resolved.get(so)
            if not lib:
                problem(b, f"ldd does not resolve {so}")
                continue
            owner = None
            for cand in (lib, os.path.realpath(lib), "/usr" + lib, "/usr" + os.path.realpath(lib)):
                r = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
                if r.returncode == 0:
                    owner = r.stdout.split(":")[0].split(",")[0].strip()
                    break
            if not owner:
                problem(b, f"no Debian package owns {lib}")
                continue
            pkgs.setdefault(owner, set()).add(so)
    return pkgs


def check_containerfile(build):
    p = os.path.join(SRC, "deploy", "Containerfile")
    with open(p) as f:
        text = f.read()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    if len(stages) != 2 or not all(s.startswith("debian:12") for s in stages):
        problem(p, "wants two stages, both FROM debian:12")
        return
    runtime = stages[1].replace("\\\n", " ")
    m = re.search(r"apt-get install[^&]*?--no-install-recommends\s+([^&]+)", runtime)
    listed = set(m.group(1).split()) if m else set()
    need = needed_packages(build)
    want = set(need) - BASE_PACKAGES
    for pkg in sorted(want - listed):
        problem(p, f"the runtime stage lacks {pkg} (for {', '.join(sorted(need[pkg]))})")
    for pkg in sorted(listed - want):
        problem(p, f"the runtime stage installs {pkg}, which no binary needs")
    checked["runtime packages"] = " ".join(sorted(listed))
    for b in BINS:
        if f"/build/{b} " not in runtime and f"/build/{b}\n" not in runtime:
            problem(p, f"the runtime stage does not copy {b}")
    for port in re.findall(r"^EXPOSE (.+)$", runtime, re.M)[0].split():
        if not any(port in help_text(build, b) for b in BINS[1:]):
            problem(p, f"EXPOSE {port}: in no binary's --help")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build = os.path.abspath(sys.argv[1])
    add_domain = "--add-domain" in sys.argv[2:]
    check_k8s(build, add_domain)
    if not add_domain:
        check_systemd(build)
        check_containerfile(build)
    what = ", ".join(f"{v} {k}" for k, v in checked.items())
    if problems:
        print("\n".join(problems))
        print(f"manifests: {len(problems)} problems ({what})")
        sys.exit(1)
    print(f"manifests: all agree with the binaries ({what})")


if __name__ == "__main__":
    main()
