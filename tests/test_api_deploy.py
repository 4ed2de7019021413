"""deploy/: Dockerfiles, docker-compose and Kubernetes manifests are checked without a container engine:
valid syntax (dockerfile-parse, yamllint), referenced files exist, ports consistent between Dockerfile,
compose, Kubernetes and the server's default, probes and health checks hit real endpoints, the offline
image installs run.sh's Debian packages, the server image installs no MPI / PETSc, commands use real
``structrom serve`` flags, the image's server.toml is a valid configuration."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"

dockerfile_parse = pytest.importorskip("dockerfile_parse", reason="dockerfile-parse is not installed (pip install -e .[dev])")


def parse_dockerfile(name: str) -> list[dict]:
    import io

    p = dockerfile_parse.DockerfileParser(fileobj=io.BytesIO((DEPLOY / name).read_bytes()))
    return p.structure


def instructions(structure, kind: str) -> list[str]:
    return [s["value"] for s in structure if s["instruction"] == kind]


def exec_form(value: str) -> list[str]:
    return json.loads(value) if value.strip().startswith("[") else shlex.split(value)


@pytest.fixture(scope="module")
def app_paths():
    from structrom.api.config import ServerConfig
    from structrom.api.server import create_app

    app = create_app(ServerConfig())  # routes live in included routers: their paths are the schema's
    return set(app.openapi()["paths"]) | {r.path for r in app.routes if hasattr(r, "path")}


@pytest.fixture(scope="module")
def serve_flags():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "structrom.api.cli", "serve", "--help"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return set(re.findall(r"(--[a-z][a-z-]*)", out.stdout))


def check_serve_command(cmd: list[str], flags: set[str]) -> None:
    assert cmd[:2] == ["structrom", "serve"], cmd
    for tok in cmd[2:]:
        if tok.startswith("--"):
            assert tok in flags, f"{tok} is not a flag of structrom serve"
    assert cmd[cmd.index("--port") + 1] == "8000" and cmd[cmd.index("--host") + 1] == "0.0.0.0"


def test_yaml_lint():
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    conf = YamlLintConfig("extends: default\nrules:\n  line-length: {max: 120}\n  document-start: disable\n"
                          "  truthy: {check-keys: false}\n")
    files = [DEPLOY / "docker-compose.yml", *sorted((DEPLOY / "k8s").glob("*.yaml"))]
    assert len(files) >= 2
    for f in files:
        problems = list(linter.run(f.read_text(), conf, str(f)))
        assert not problems, "\n".join(f"{f.name}:{p.line}: {p.desc}" for p in problems)


def test_dockerfiles_parse_and_reference_existing_files():
    for name in ("Dockerfile.server", "Dockerfile.offline"):
        st = parse_dockerfile(name)
        kinds = [s["instruction"] for s in st if s["instruction"] != "COMMENT"]
        assert kinds[0] == "FROM" and "CMD" in kinds, name
        for value in instructions(st, "COPY"):
            srcs = exec_form(value)[:-1]
            for src in srcs:
                assert (REPO / src).exists(), f"{name}: COPY {src} does not exist (build context is the repo root)"
        assert instructions(st, "WORKDIR")


def test_server_image(serve_flags, app_paths):
    from structrom.api.config import DEFAULT_PORT, load_config

    st = parse_dockerfile("Dockerfile.server")
    assert instructions(st, "FROM") == ["python:3.11-slim"]
    runs = " ".join(instructions(st, "RUN"))
    installs = " ".join(re.findall(r"(?:pip install|apt-get install)[^&]*", runs))
    assert not re.search(r"mpi|petsc", installs, re.I), "the server image must not install MPI / PETSc"
    assert "pip install --no-deps ." in runs
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    needed = [re.split(r"[<>=\[ ]", d)[0] for d in project["dependencies"] + project["optional-dependencies"]["api"]]
    for dep in needed + ["h5py"]:
        assert f'"{dep}' in runs, f"the server image does not install {dep}"
    assert instructions(st, "EXPOSE") == [str(DEFAULT_PORT)]
    assert instructions(st, "USER") and instructions(st, "USER")[0] not in ("0", "root")
    health = " ".join(instructions(st, "HEALTHCHECK"))
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", health)
    assert url and url.group(1) == str(DEFAULT_PORT) and url.group(2) in app_paths
    cmd = exec_form(instructions(st, "CMD")[0])
    check_serve_command(cmd, serve_flags)
    cfg = load_config(DEPLOY / "server.toml")
    assert cfg.port == DEFAULT_PORT and str(cfg.models_dir) == "/models"
    assert any("server.toml" in c for c in instructions(st, "COPY"))


def test_offline_image_matches_run_sh():
    st = parse_dockerfile("Dockerfile.offline")
    assert instructions(st, "FROM") == ["debian:bookworm"]
    run_sh = (REPO / "run.sh").read_text()
    m = re.search(r"DEB_PACKAGES=\(([^)]*)\)", run_sh, re.S)
    wanted = set(m.group(1).split())
    runs = " ".join(instructions(st, "RUN"))
    installed = set(re.search(r"apt-get install -y --no-install-recommends ([^&]*)", runs).group(1).split())
    assert wanted <= installed, f"missing Debian packages: {sorted(wanted - installed)}"
    petsc = re.search(r'PETSC_DIR="\$\{PETSC_DIR:-([^}]*)\}"', run_sh).group(1)
    assert petsc in " ".join(instructions(st, "ENV"))
    assert "constraints.txt" in runs and "--system-site-packages" in runs


def test_compose(app_paths):
    from structrom.api.config import DEFAULT_PORT

    doc = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    server = doc["services"]["server"]
    assert (DEPLOY / server["build"]["context"] / server["build"]["dockerfile"]).exists()
    assert (DEPLOY / doc["services"]["offline"]["build"]["context"] / doc["services"]["offline"]["build"]["dockerfile"]).exists()
    assert [p.split(":")[-1] for p in server["ports"]] == [str(DEFAULT_PORT)]
    assert any(v.split(":")[0] in doc["volumes"] and v.split(":")[1] == "/models" for v in server["volumes"])
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", " ".join(server["healthcheck"]["test"]))
    assert url.group(1) == str(DEFAULT_PORT) and url.group(2) in app_paths
    assert "STRUCTROM_API_KEYS" in server["environment"]


def test_kubernetes(app_paths, serve_flags):
    from structrom.api.config import DEFAULT_PORT, ServerConfig

    docs = [d for d in yaml.safe_load_all((DEPLOY / "k8s" / "structrom.yaml").read_text()) if d]
    kinds = {d["kind"]: d for d in docs}
    assert {"Deployment", "Service", "PersistentVolumeClaim"} <= set(kinds)
    dep, svc = kinds["Deployment"], kinds["Service"]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": DEFAULT_PORT}
    assert svc["spec"]["ports"][0]["port"] == DEFAULT_PORT and svc["spec"]["ports"][0]["targetPort"] in ("http", DEFAULT_PORT)
    assert c["livenessProbe"]["httpGet"]["path"] == "/health" and c["readinessProbe"]["httpGet"]["path"] == "/ready"
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["path"] in app_paths and c[probe]["httpGet"]["port"] in ("http", DEFAULT_PORT)
    check_serve_command(c["command"], serve_flags)
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts["models"] == "/models"
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["models"]["persistentVolumeClaim"]["claimName"] == kinds["PersistentVolumeClaim"]["metadata"]["name"]
    keys_env = [e for e in c["env"] if e["name"] == ServerConfig().keys_env]
    assert keys_env and keys_env[0]["valueFrom"]["secretKeyRef"]["optional"] is True
    # deploy/README.md: the CPU request is `workers` cores plus about half a core for HTTP
    import tomllib

    workers = tomllib.loads((DEPLOY / "server.toml").read_text())["workers"]
    cpu = str(c["resources"]["requests"]["cpu"])
    assert (float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)) >= workers + 0.5, (cpu, workers)
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] in app_paths and annotations["prometheus.io/port"] == str(DEFAULT_PORT)


def test_deploy_readme_mentions_every_file():
    text = (DEPLOY / "README.md").read_text()
    for f in ("Dockerfile.server", "Dockerfile.offline", "docker-compose.yml", "k8s/structrom.yaml", "server.toml",
              "slurm/hifi.sbatch"):
        assert f in text, f
