//! `fastfn export k8s` and the engine as a replica: the exports of `fixtures/demo` and
//! `fixtures/k8s` (schedules, secrets) validate against the Kubernetes schemas offline
//! (`kubernetes-validate`, installed by `scripts/ensure-tools`); the Containerfile builds with
//! buildah from Debian packages and the image serves `/hello` (skipped, with the reason, when
//! buildah or a Debian base image is missing); SIGTERM drains a request in flight;
//! `/_fn/health?probe=1` fails while a runtime is down; `POST /_fn/export/k8s` is guarded.

use crate::support::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Run `fastfn export k8s` on a fixture into a fresh folder; returns (folder, stderr).
fn export(fixture_name: &str, extra: &[&str]) -> (tempfile::TempDir, String) {
    let out = tempfile::tempdir().expect("temp");
    let target = out.path().join("k8s");
    let o = Command::new(env!("CARGO_BIN_EXE_fastfn"))
        .args(["export", "k8s"])
        .arg(fixture(fixture_name))
        .arg("--out")
        .arg(&target)
        .args(extra)
        .env_remove("FN_RUNTIMES")
        .output()
        .expect("run fastfn export");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.success(),
        "export failed: {stderr}\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    (out, stderr)
}

fn manifests(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read out")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    v.sort();
    v
}

/// `kubernetes-validate --strict` on every manifest (unknown fields fail too). The package
/// ships its schemas: no network.
fn validate(dir: &Path) {
    let files = manifests(dir);
    assert!(!files.is_empty());
    let o = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict"])
        .args(&files)
        .current_dir(dir)
        .output()
        .expect("python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !text.contains("No module named kubernetes_validate"),
        "kubernetes-validate is not installed: run scripts/ensure-tools ({text})"
    );
    assert!(o.status.success(), "schema validation failed:\n{text}");
    for f in &files {
        assert!(text.contains(&format!("{f} passed")), "{f} not validated:\n{text}");
    }
}

/// The kustomization lists exactly the manifests written.
fn kustomization_lists_all(dir: &Path) {
    let k = std::fs::read_to_string(dir.join("kustomization.yaml")).expect("kustomization");
    for f in manifests(dir) {
        assert!(k.contains(&format!("- \"{f}\"")), "{f} not in kustomization:\n{k}");
    }
    let listed = k.lines().filter(|l| l.trim_start().starts_with("- \"")).count();
    assert_eq!(listed, manifests(dir).len(), "{k}");
}

/// Every file under `dir` (the project copy included), read as bytes, has no `needle`.
fn nowhere(dir: &Path, needle: &str) {
    for e in std::fs::read_dir(dir).expect("read").flatten() {
        let p = e.path();
        if p.is_dir() {
            nowhere(&p, needle);
        } else if p.file_name().is_some_and(|n| n != "fastfn") {
            let bytes = std::fs::read(&p).expect("read file");
            assert!(
                !String::from_utf8_lossy(&bytes).contains(needle),
                "{} holds a secret value",
                p.display()
            );
        }
    }
}

#[test]
fn demo_export_validates_against_the_kubernetes_schemas() {
    let (out, _) = export("demo", &[]);
    let dir = out.path().join("k8s");
    for f in [
        "Containerfile",
        "README.md",
        "fastfn",
        "project/hello.py",
        "project/fastfn.json",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    validate(&dir);
    kustomization_lists_all(&dir);
    // demo/settings has one secret: its name is in the template, its value nowhere.
    let secret = std::fs::read_to_string(dir.join("secret.yaml")).expect("secret");
    assert!(secret.contains("API_KEY: \"\""), "{secret}");
    nowhere(&dir, "not-a-real-secret");
    // The image keeps the secret key's name without its value: the engine fills it from the
    // pod's environment (the Secret), so `event.secrets` is what it is locally (k8s_pod.rs).
    let env = std::fs::read_to_string(dir.join("project/settings/fn.env.json")).expect("env copy");
    let env: serde_json::Value = serde_json::from_str(&env).expect("env json");
    assert!(env.get("GREETING").is_some(), "{env}");
    assert_eq!(env["API_KEY"], serde_json::json!({"is_secret": true}), "{env}");
    let d = std::fs::read_to_string(dir.join("deployment.yaml")).expect("deployment");
    for want in [
        "\"0.0.0.0\"",
        "/_fn/health?probe=1",
        "FN_LOG_FORMAT",
        "preStop",
        "readOnlyRootFilesystem: true",
    ] {
        assert!(d.contains(want), "{want} missing:\n{d}");
    }
    let cf = std::fs::read_to_string(dir.join("Containerfile")).expect("Containerfile");
    assert!(
        cf.contains("python3 nodejs") && cf.contains("RUN fastfn prepare /app"),
        "{cf}"
    );
}

#[test]
fn schedules_and_secrets_export_validates() {
    let (out, stderr) = export("k8s", &["--name", "Shop", "--image", "registry.example/shop:1"]);
    let dir = out.path().join("k8s");
    validate(&dir);
    kustomization_lists_all(&dir);
    assert_eq!(
        manifests(&dir),
        [
            "configmap.yaml",
            "cronjob-shop-cron-nightly.yaml",
            "cronjob-shop-cron-report.yaml",
            "deployment.yaml",
            "hpa.yaml",
            "secret.yaml",
            "service.yaml"
        ]
    );
    let report = std::fs::read_to_string(dir.join("cronjob-shop-cron-report.yaml")).expect("cron");
    for want in [
        "schedule: \"*/5 * * * *\"",
        "\"POST\"",
        "\"X-Report: cron\"",
        "\"{\\\"send\\\":true}\"",
        "\"http://shop:8080/report?kind=daily%20totals\"",
        "backoffLimit: 2",
        "image: \"registry.example/shop:1\"",
    ] {
        assert!(report.contains(want), "{want} missing:\n{report}");
    }
    let nightly = std::fs::read_to_string(dir.join("cronjob-shop-cron-nightly.yaml")).expect("cron");
    assert!(
        nightly.contains("schedule: \"30 2 * * *\"") && nightly.contains("timeZone: \"Etc/GMT-2\""),
        "{nightly}"
    );
    // The 5-second schedule cannot be a CronJob: refused aloud, in the CLI and the README.
    assert!(
        stderr.contains("ticker: schedule not exported: every_seconds 5"),
        "{stderr}"
    );
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("readme");
    assert!(readme.contains("every_seconds 5"), "{readme}");
    assert!(!stderr.contains("`schedule` is not supported"), "{stderr}");
    let secret = std::fs::read_to_string(dir.join("secret.yaml")).expect("secret");
    assert!(
        secret.contains("DB_PASSWORD: \"\"") && secret.contains("REPORT_API_TOKEN: \"\""),
        "{secret}"
    );
    // A secret key that cannot be an environment variable is refused aloud, value unwritten.
    assert!(
        stderr.contains("nightly/fn.env.json: secret key `db-url` is not an environment variable name"),
        "{stderr}"
    );
    assert!(!secret.contains("db-url"), "{secret}");
    nowhere(&dir, "fixture-secret-url");
    nowhere(&dir, "k8s-fixture-secret-value-never-exported");
    nowhere(&dir, "another-fixture-secret");
    let d = std::fs::read_to_string(dir.join("deployment.yaml")).expect("deployment");
    assert!(
        d.contains("\"python=2\"") && d.contains("name: \"shop-secrets\""),
        "{d}"
    );
    let cm = std::fs::read_to_string(dir.join("configmap.yaml")).expect("configmap");
    assert!(cm.contains("ops@example.com") && cm.contains("runtime-daemons"), "{cm}");
}

#[test]
fn export_refuses_a_non_empty_folder_without_force() {
    let out = tempfile::tempdir().expect("temp");
    std::fs::write(out.path().join("mine.txt"), "keep").expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_fastfn"))
        .args(["export", "k8s"])
        .arg(fixture("k8s"))
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    assert!(!out.path().join("deployment.yaml").exists());
}

/// Names a Debian 12 base image is looked for under, in order: `FASTFN_K8S_BASE_IMAGE`, the
/// Containerfile's default, and the name docs/deploy.md's debootstrap recipe gives one made
/// from Debian's own packages (for machines that reach no image registry).
fn base_candidates() -> Vec<String> {
    let mut v: Vec<String> = std::env::var("FASTFN_K8S_BASE_IMAGE").into_iter().collect();
    v.push("docker.io/library/debian:bookworm-slim".into());
    v.push("localhost/debian-bookworm-base:latest".into());
    v
}

/// buildah and a Debian 12 base image already on this machine, or why the build cannot run.
fn container_setup() -> Result<String, String> {
    if which::which("buildah").is_err() {
        return Err(if which::which("podman").is_ok() {
            "podman is installed but buildah is not: the test builds with `buildah bud --isolation chroot` \
             (no OCI runtime needed); apt-get install buildah"
                .into()
        } else {
            "neither buildah nor podman is installed (apt-get install buildah podman)".into()
        });
    }
    for base in base_candidates() {
        let present = Command::new("buildah")
            .args(["inspect", "--type", "image", &base])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if present {
            return Ok(base);
        }
    }
    Err(format!(
        "no Debian 12 base image on this machine (looked for {}): pull one, or make one with \
         debootstrap as docs/deploy.md shows",
        base_candidates().join(", ")
    ))
}

/// The Containerfile builds (Debian packages, `fastfn prepare`), and the image's own files
/// serve `/hello` as uid 10001. The run uses `buildah run --isolation chroot`, which needs no
/// OCI runtime (sandboxes refuse crun's setrlimit); on a workstation `podman run` does the
/// same (docs/deploy.md).
#[tokio::test(flavor = "multi_thread")]
async fn containerfile_builds_and_the_image_serves_hello() {
    let base = match container_setup() {
        Ok(x) => x,
        Err(why) => {
            eprintln!("SKIP containerfile_builds_and_the_image_serves_hello: {why}");
            return;
        }
    };
    let image = "localhost/fastfn-k8s-test:latest";
    let (out, _) = export("k8s", &["--image", image]);
    let dir = out.path().join("k8s");
    let build = Command::new("buildah")
        .args([
            "bud",
            "--isolation",
            "chroot",
            "--build-arg",
            &format!("BASE={base}"),
            "-t",
            image,
        ])
        .arg(&dir)
        .output()
        .expect("buildah bud");
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    // Debian's mirrors out of reach is the machine's limit, not the Containerfile's fault.
    let offline = ["Temporary failure resolving", "Could not resolve", "Failed to fetch"];
    if !build.status.success() && offline.iter().any(|m| log.contains(m)) {
        eprintln!(
            "SKIP containerfile_builds_and_the_image_serves_hello: Debian's mirrors are out of reach from the build"
        );
        let _ = Command::new("buildah").args(["rmi", "-f", image]).output();
        return;
    }
    assert!(build.status.success(), "buildah bud failed:\n{log}");
    let ctr = Command::new("buildah")
        .args(["from", image])
        .output()
        .expect("buildah from");
    assert!(ctr.status.success(), "{}", String::from_utf8_lossy(&ctr.stderr));
    let ctr = String::from_utf8_lossy(&ctr.stdout).trim().to_string();
    let port = free_port();
    let mut run = tokio::process::Command::new("buildah")
        .args(["run", "--isolation", "chroot", "--user", "10001", &ctr, "--"])
        .args([
            "fastfn",
            "run",
            "/app",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("buildah run");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let mut answer = None;
    for _ in 0..120 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            let r = request(addr, "GET", "/hello", &[], None).await;
            if r.status == 200 {
                answer = Some(r.json());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if let Some(pid) = run.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = tokio::time::timeout(Duration::from_secs(15), run.wait()).await;
    let _ = run.kill().await;
    let _ = Command::new("buildah").args(["rm", &ctr]).output();
    let _ = Command::new("buildah").args(["rmi", "-f", image]).output();
    assert_eq!(answer, Some(serde_json::json!({"message": "hello from the cluster"})));
}

/// Every path under `dir`, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read").flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).expect("under").display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The replica, run as the Deployment runs it (admin API off, JSON logs, no hot reload): it
/// writes nothing into the project folder; SIGTERM closes the listener at once, lets the call
/// in flight finish, and exits 0; every line on stdout is JSON (`FN_LOG_FORMAT=json`).
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_the_request_in_flight() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let project = copy_fixture("k8s");
    let before = tree(project.path());
    let sockets = socket_base();
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fastfn"))
        .args(["run", "--port", &port.to_string()])
        .arg(project.path())
        .env("FN_RUNTIMES", "python")
        .env("FN_LOG_FORMAT", "json")
        .env("FN_HOT_RELOAD", "0")
        .env("FN_ADMIN_API_ENABLED", "0")
        .env("FN_SCHEDULER_ENABLED", "0")
        .env("FN_SOCKET_BASE_DIR", sockets.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    let ready = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            let serving = v["msg"] == "serving";
            seen.push(v);
            if serving {
                return;
            }
        }
    })
    .await;
    assert!(ready.is_ok(), "no serving line: {seen:?}");
    let serving = seen.last().expect("serving");
    assert!(serving["ts"].is_number() && serving["level"] == "info", "{serving}");
    assert!(
        serving["routes"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x["pattern"] == "/slow")),
        "{serving}"
    );
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    // Daemons up before the clock starts (the first call would wait for them otherwise).
    assert_eq!(request(addr, "GET", "/hello", &[], None).await.status, 200);
    assert_eq!(request(addr, "POST", "/report", &[], None).await.status, 200);
    // The admin API is off; the probes' health stays open.
    assert_eq!(request(addr, "GET", "/_fn/catalog", &[], None).await.status, 404);
    assert_eq!(request(addr, "GET", "/_fn/health?probe=1", &[], None).await.status, 200);

    let slow = tokio::spawn(async move { request(addr, "GET", "/slow", &[], None).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let pid = nix::unistd::Pid::from_raw(child.id().expect("pid") as i32);
    let sent = std::time::Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("term");

    // New connections are refused while the call in flight finishes.
    let mut refused = false;
    for _ in 0..40 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(refused, "the listener stayed open after SIGTERM");

    let r = tokio::time::timeout(Duration::from_secs(10), slow)
        .await
        .expect("in-flight call ends")
        .expect("join");
    assert_eq!((r.status, r.json()), (200, serde_json::json!({"slow": "done"})));
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits within the grace period")
        .expect("status");
    assert!(status.success(), "{status}");
    assert!(sent.elapsed() < Duration::from_secs(12), "{:?}", sent.elapsed());
    let mut rest = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        rest.push(v["msg"].as_str().unwrap_or("").to_string());
    }
    assert!(
        rest.contains(&"stopping".to_string()) && rest.contains(&"stopped".to_string()),
        "{rest:?}"
    );
    assert_eq!(tree(project.path()), before, "the engine wrote into the project folder");
}

/// Probes read `/_fn/health?probe=1`: 503 while a runtime the routes need is down; the plain
/// health document stays 200 (as the original's).
#[tokio::test(flavor = "multi_thread")]
async fn health_probe_fails_while_a_runtime_is_down() {
    let dir = tempfile::tempdir().expect("temp");
    // An "interpreter" that exits at once: the python daemon never comes up.
    let fake = dir.path().join("python3");
    std::fs::write(&fake, "#!/bin/sh\nexit 1\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let down = start(
        "k8s",
        &[
            ("FN_RUNTIMES", "python"),
            ("FN_PYTHON_BIN", fake.to_str().expect("utf8")),
        ],
    )
    .await;
    let probe = down.get("/_fn/health?probe=1").await;
    assert_eq!(probe.status, 503, "{}", probe.text());
    assert_eq!(probe.json()["runtimes"]["python"]["health"]["up"], false);
    assert_eq!(down.get("/_fn/health").await.status, 200);
    down.stop().await;

    let up = start("k8s", &[("FN_RUNTIMES", "python")]).await;
    up.ready().await;
    assert_eq!(up.get("/_fn/health?probe=1").await.status, 200);
    up.stop().await;
}

/// The dashboard's "Export for Kubernetes": `POST /_fn/export/k8s` on a running `fastfn`,
/// behind the admin guard (CSRF header), with typed errors.
#[tokio::test(flavor = "multi_thread")]
async fn admin_export_writes_the_running_project() {
    let dir = fixture("k8s");
    let e = spawn_engine(&["run", dir.to_str().expect("utf-8")], &[("FN_HOT_RELOAD", "0")]).await;
    let addr = e.addr();
    let out = tempfile::tempdir().expect("temp");
    let target = out.path().join("export");
    let body = serde_json::json!({"out": target, "name": "from-app"}).to_string();
    let csrf = [("X-Fn-Request", "1"), ("Content-Type", "application/json")];

    let no_csrf = request(addr, "POST", "/_fn/export/k8s", &[], Some(body.as_bytes())).await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.text());
    assert!(!target.exists());

    let relative = request(addr, "POST", "/_fn/export/k8s", &csrf, Some(br#"{"out":"rel/dir"}"#)).await;
    assert_eq!(relative.status, 400);
    assert_eq!(relative.json()["error"], "export.out_not_absolute");

    let ok = request(addr, "POST", "/_fn/export/k8s", &csrf, Some(body.as_bytes())).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let r = ok.json();
    assert_eq!(
        (r["name"].as_str(), r["image"].as_str()),
        (Some("from-app"), Some("from-app:latest"))
    );
    assert!(
        r["files"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "cronjob-from-app-cron-report.yaml")),
        "{r}"
    );
    assert!(
        r["warnings"].as_array().is_some_and(|w| w
            .iter()
            .any(|x| x.as_str().is_some_and(|s| s.contains("every_seconds 5")))),
        "{r}"
    );
    validate(&target);
    assert!(target.join("fastfn").is_file());

    let again = request(addr, "POST", "/_fn/export/k8s", &csrf, Some(body.as_bytes())).await;
    assert_eq!(again.status, 400);
    assert_eq!(again.json()["error"], "export.out_not_empty");
    let get = request(addr, "GET", "/_fn/export/k8s", &[], None).await;
    assert_eq!(get.status, 405);
    e.stop().await;
}

/// `fastfn prepare` (the Containerfile's build step) makes the per-function installs the
/// engine would make at start, and exits 1 when one fails; after it, an engine serves the
/// function at its first request, with nothing left to install (a pod starts without network).
#[tokio::test(flavor = "multi_thread")]
async fn prepare_installs_what_the_engine_would() {
    let dir = copy_fixture("deps");
    let prepare = |dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_fastfn"))
            .arg("prepare")
            .arg(dir)
            .env("FN_RUNTIMES", "python")
            .output()
            .expect("fastfn prepare")
    };
    // A package that does not exist: the build step fails, naming the function.
    let failed = prepare(dir.path());
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("failed") && l.contains("py-missing")),
        "{stdout}"
    );

    std::fs::remove_dir_all(dir.path().join("py-missing")).expect("rm");
    let ok = prepare(dir.path());
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{stdout}{}", String::from_utf8_lossy(&ok.stderr));
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("ready") && l.contains("py-requirements")),
        "{stdout}"
    );
    assert!(dir.path().join("py-requirements/.deps/six.py").is_file());

    let before = tree(dir.path());
    let e = start_in(dir.path(), &[("FN_RUNTIMES", "python"), ("FN_HOT_RELOAD", "0")]).await;
    e.ready().await;
    let r = e.get("/py-requirements").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["from_deps"], true);
    e.stop().await;
    assert_eq!(
        tree(dir.path()),
        before,
        "the engine installed or wrote again after prepare"
    );
}
