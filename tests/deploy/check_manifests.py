#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# check_manifests - offline checks of docker-compose.yml and deploy/k8s/*.yaml:
# they parse, their names and labels agree, every DESCENT_* variable is a
# descent option, compose and Kubernetes give the nodes the same variables,
# and the replica counts match the counts the scheduler waits for. With
# DESCENT_BIN set, `descent config` also checks every container's values.
#
# usage: tests/deploy/check_manifests.py     (make check-deploy)
# No cluster is needed or contacted; what this cannot see (a real API
# server's schema and admission) is not checked.
import os
import re
import subprocess
import sys

try:
    import yaml
except ImportError:
    print("check-deploy: skipped: python3-yaml is not installed")
    sys.exit(0)

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
K8S = os.path.join(ROOT, "deploy", "k8s")
errors = []
checks = 0


def check(cond, msg):
    global checks
    checks += 1
    if not cond:
        errors.append(msg)


def options():
    """The DESCENT_* names of every option, from docs/configuration.md."""
    with open(os.path.join(ROOT, "docs", "configuration.md")) as f:
        names = set(re.findall(r"`(DESCENT_[A-Z0-9_]+)`", f.read()))
    return names - {"DESCENT_BIN"} | {"DESCENT_CONFIG"}


def compose_default(value):
    """${VAR:-default} -> default, as compose does with VAR unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def load_k8s():
    docs = []
    with open(os.path.join(K8S, "kustomization.yaml")) as f:
        kust = yaml.safe_load(f)
    files = kust.get("resources", [])
    listed = {f for f in os.listdir(K8S) if f.endswith(".yaml")} - {"kustomization.yaml"}
    check(set(files) == listed, f"kustomization resources {sorted(files)} != files {sorted(listed)}")
    for name in files:
        with open(os.path.join(K8S, name)) as f:
            for d in yaml.safe_load_all(f):
                if d is not None:
                    docs.append((name, d))
    return docs


def pod_spec(obj):
    kind = obj["kind"]
    if kind in ("Deployment", "StatefulSet", "Job"):
        return obj["spec"]["template"]["spec"]
    return None


def container_env(c, configmaps):
    """The DESCENT_* variables a container gets, fieldRefs as a sample IP."""
    env = {}
    for src in c.get("envFrom", []):
        ref = src.get("configMapRef", {}).get("name")
        check(ref in configmaps, f"container {c['name']}: no ConfigMap {ref}")
        env.update(configmaps.get(ref, {}))
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "valueFrom" in e:
            env[e["name"]] = "10.1.2.3"
    return env


def main():
    opts = options()
    check(len(opts) > 50, "docs/configuration.md lists too few DESCENT_ names")

    # --- Kubernetes
    docs = load_k8s()
    by_kind = {}
    for fname, d in docs:
        for key in ("apiVersion", "kind", "metadata"):
            check(key in d, f"{fname}: a document without {key}")
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
        if d["kind"] != "Namespace":
            check(d["metadata"].get("namespace") == "descent",
                  f"{fname}: {d['kind']} {d['metadata']['name']} not in namespace descent")
    for kind in ("Namespace", "ConfigMap", "Service", "PersistentVolumeClaim",
                 "Deployment", "StatefulSet", "Job"):
        check(kind in by_kind, f"no {kind} in deploy/k8s")
    configmaps = {n: {k: str(v) for k, v in d.get("data", {}).items()}
                  for n, d in by_kind.get("ConfigMap", {}).items()}
    pvcs = set(by_kind.get("PersistentVolumeClaim", {}))
    services = by_kind.get("Service", {})
    workloads = {}
    for kind in ("Deployment", "StatefulSet", "Job"):
        for name, d in by_kind.get(kind, {}).items():
            workloads[name] = d
    role_env = {}
    for name, d in workloads.items():
        spec = pod_spec(d)
        labels = d["spec"]["template"]["metadata"]["labels"]
        sel = d["spec"].get("selector", {}).get("matchLabels")
        if d["kind"] != "Job":
            check(sel and all(labels.get(k) == v for k, v in sel.items()),
                  f"{name}: selector does not match the pod labels")
        check(spec.get("enableServiceLinks") is False,
              f"{name}: enableServiceLinks must be false (service links add DESCENT_* variables)")
        check(spec.get("securityContext", {}).get("runAsNonRoot") is True,
              f"{name}: not runAsNonRoot")
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        templates = {t["metadata"]["name"] for t in d["spec"].get("volumeClaimTemplates", [])}
        for v in vols.values():
            if "persistentVolumeClaim" in v:
                check(v["persistentVolumeClaim"]["claimName"] in pvcs,
                      f"{name}: no PVC {v['persistentVolumeClaim']['claimName']}")
            if "configMap" in v:
                check(v["configMap"]["name"] in configmaps, f"{name}: no ConfigMap {v['configMap']['name']}")
        for c in spec["containers"]:
            for m in c.get("volumeMounts", []):
                check(m["name"] in vols or m["name"] in templates,
                      f"{name}/{c['name']}: mount of unknown volume {m['name']}")
            role = c["args"][0]
            check(role in ("scheduler", "server", "worker"), f"{name}: unknown role {role}")
            env = container_env(c, configmaps)
            role_env[role] = env
            for k in env:
                if k.startswith("DESCENT_"):
                    check(k in opts, f"{name}: {k} is not a descent option")
            check("DESCENT_CLUSTER_ADVERTISE" in env, f"{name}: no DESCENT_CLUSTER_ADVERTISE")
            check(c.get("image", "").split(":")[0] == "descent", f"{name}: image is not descent")
        if d["kind"] == "StatefulSet":
            svc = services.get(d["spec"]["serviceName"])
            check(svc is not None and svc["spec"].get("clusterIP") == "None",
                  f"{name}: serviceName must be a headless Service")
    for sname, svc in services.items():
        sel = svc["spec"]["selector"]
        pods = [w for w in workloads.values()
                if all(w["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())]
        check(len(pods) == 1, f"Service {sname} selects {len(pods)} workloads")
        for p in svc["spec"]["ports"]:
            names = {cp.get("name") for w in pods for c in pod_spec(w)["containers"]
                     for cp in c.get("ports", [])}
            check(p["targetPort"] in names, f"Service {sname}: no container port {p['targetPort']}")
    env = configmaps.get("descent-env", {})
    sched = services.get("descent-scheduler")
    check(sched is not None, "no Service descent-scheduler")
    if sched:
        port = sched["spec"]["ports"][0]["port"]
        check(env.get("DESCENT_CLUSTER_SCHEDULER") == f"tcp://descent-scheduler:{port}",
              "DESCENT_CLUSTER_SCHEDULER does not name the scheduler's Service and port")
    sts = by_kind.get("StatefulSet", {}).get("descent-server")
    job = by_kind.get("Job", {}).get("descent-worker")
    if sts:
        check(str(sts["spec"]["replicas"]) == env.get("DESCENT_CLUSTER_SERVERS"),
              "StatefulSet replicas != DESCENT_CLUSTER_SERVERS")
    if job and env.get("DESCENT_CLUSTER_WORKERS") != "0":
        check(str(job["spec"]["parallelism"]) == env.get("DESCENT_CLUSTER_WORKERS") ==
              str(job["spec"]["completions"]),
              "Job parallelism/completions != DESCENT_CLUSTER_WORKERS")

    # --- docker-compose.yml
    with open(os.path.join(ROOT, "docker-compose.yml")) as f:
        compose = yaml.safe_load(f)
    svcs = compose["services"]
    check(set(svcs) == {"scheduler", "server", "worker"}, f"compose services {sorted(svcs)}")
    compose_env = {}
    for name, s in svcs.items():
        check(s.get("command") == [name], f"compose {name}: command is not [{name}]")
        e = {k: compose_default(v) for k, v in s.get("environment", {}).items()}
        compose_env[name] = e
        for k in e:
            check(k in opts, f"compose {name}: {k} is not a descent option")
        check("healthcheck" in s, f"compose {name}: no healthcheck")
        check(any(str(v).startswith("out:") for v in s.get("volumes", [])),
              f"compose {name}: the named volume is not mounted")
        check(s.get("networks") == ["descent"], f"compose {name}: not on the private network")
    check(compose_env["server"].get("DESCENT_CLUSTER_SERVERS") == str(svcs["server"]["deploy"]["replicas"]),
          "compose: server replicas != DS_SERVERS default")
    w = compose_env["worker"].get("DESCENT_CLUSTER_WORKERS")
    check(w == "0" or w == str(svcs["worker"]["deploy"]["replicas"]),
          "compose: worker replicas != DS_WORKERS default")
    check("out" in (compose.get("volumes") or {}), "compose: no named volume out")
    # docker-compose v1 warns on every start about the deploy: keys it does
    # not support (its translate_deploy_keys_to_container_config): those
    # belong in deploy/swarm.yml, which keeps the scheduler's dnsrr endpoint.
    v1_unsupported = {"endpoint_mode", "labels", "update_config", "rollback_config"}
    for name, s in svcs.items():
        d = s.get("deploy") or {}
        bad = sorted(set(d) & v1_unsupported)
        bad += [f"restart_policy.{k}" for k in (d.get("restart_policy") or {})
                if k not in ("condition", "max_attempts")]
        check(not bad, f"compose {name}: deploy keys docker-compose v1 warns about: {bad}")
    with open(os.path.join(ROOT, "deploy", "swarm.yml")) as f:
        swarm = yaml.safe_load(f)
    check(swarm.get("version") == compose.get("version"),
          "deploy/swarm.yml: not the version of docker-compose.yml")
    ssvcs = swarm.get("services") or {}
    check(set(ssvcs) <= set(svcs), f"deploy/swarm.yml: unknown services {sorted(set(ssvcs) - set(svcs))}")
    check(((ssvcs.get("scheduler") or {}).get("deploy") or {}).get("endpoint_mode") == "dnsrr",
          "deploy/swarm.yml: the scheduler's endpoint_mode is not dnsrr")
    # Both give every role the same variables (values may differ: the
    # endpoint's host name, the join timeout).
    for role in ("scheduler", "server", "worker"):
        a = set(compose_env.get(role, {})) | {"DESCENT_CLUSTER_ADVERTISE"}
        b = {k for k in role_env.get(role, {}) if k.startswith("DESCENT_")}
        check(a == b, f"{role}: compose and Kubernetes differ in {sorted(a ^ b)}")

    # --- the image's build stage installs every build package of make deps
    with open(os.path.join(ROOT, "Makefile")) as f:
        m = re.search(r"^DEB_PKGS\s*:=((?:.*\\\n)*.*)$", f.read(), re.M)
    deb = m.group(1).replace("\\\n", " ").split() if m else []
    check(deb, "Makefile: no DEB_PKGS")
    with open(os.path.join(ROOT, "deploy", "Dockerfile")) as f:
        dockerfile = f.read()
    build_stage = dockerfile.split(" AS runtime")[0]
    for pkg in deb:
        if re.search(r"(-dev|-compiler)$", pkg) or pkg in ("check", "pkg-config", "build-essential"):
            check(re.search(r"[\s]" + re.escape(pkg) + r"[\s]", build_stage),
                  f"deploy/Dockerfile: the build stage does not install {pkg} (Makefile DEB_PKGS)")

    # --- descent itself accepts every container's settings
    binary = os.environ.get("DESCENT_BIN")
    if binary:
        for origin, envs in (("compose", compose_env), ("k8s", role_env)):
            for role, e in envs.items():
                e = {k: v for k, v in e.items() if k.startswith("DESCENT_") and k != "DESCENT_CONFIG"}
                e.setdefault("DESCENT_CLUSTER_ADVERTISE", "10.1.2.3")
                r = subprocess.run([binary, "config"], env={"PATH": "/usr/bin:/bin", **e},
                                   capture_output=True, text=True)
                check(r.returncode == 0, f"{origin} {role}: descent config refuses: {r.stderr.strip()}")
        job = os.path.join(ROOT, "deploy", "job.ini")
        r = subprocess.run([binary, "config", "--config", job], capture_output=True, text=True,
                           env={"PATH": "/usr/bin:/bin"})
        check(r.returncode == 0, f"deploy/job.ini: {r.stderr.strip()}")
        ini = configmaps.get("descent-job", {}).get("job.ini", "")
        tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"descent-check-{os.getpid()}.ini")
        with open(tmp, "w") as f:
            f.write(ini)
        r = subprocess.run([binary, "config", "--config", tmp], capture_output=True, text=True,
                           env={"PATH": "/usr/bin:/bin"})
        os.unlink(tmp)
        check(r.returncode == 0, f"ConfigMap descent-job: {r.stderr.strip()}")

    for e in errors:
        print(f"check-deploy: {e}")
    print(f"check-deploy: {checks} checks of docker-compose.yml and {len(docs)} Kubernetes objects"
          f"{' (and descent config)' if binary else ''}")
    print(f"{checks - len(errors)} passed, {len(errors)} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
