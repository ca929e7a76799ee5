//! The files an operator installs work as written: the systemd unit passes
//! `systemd-analyze verify` and rates OK on `systemd-analyze security`; the
//! DaemonSet validates strictly against the Kubernetes schemas, offline, and
//! asks only for what it needs.

use std::{path::PathBuf, process::Command};

use icmpxdp_tests::{icmpxdp_bin, output};

fn deploy(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(file)
}

/// The unit with ExecStart pointing at the binary under test (verify checks
/// that the command exists), in a directory of its own.
fn unit_copy() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("icmpxdp-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(deploy("icmpxdp.service"))
        .unwrap()
        .replace("/usr/local/bin/icmpxdp", icmpxdp_bin().to_str().unwrap());
    let unit = dir.join("icmpxdp.service");
    std::fs::write(&unit, text).unwrap();
    (dir, unit)
}

#[test]
fn systemd_unit_verifies_and_rates_ok() {
    let (dir, unit) = unit_copy();
    let (ok, out, err) = output(Command::new("systemd-analyze").args(["verify", unit.to_str().unwrap()]));
    // Only the unit's own lines matter (the host's other units are not ours).
    let ours: Vec<&str> = out
        .lines()
        .chain(err.lines())
        .filter(|l| l.contains("icmpxdp.service"))
        .collect();
    assert!(ok && ours.is_empty(), "systemd-analyze verify: {out}{err}");

    let (_, out, err) =
        output(Command::new("systemd-analyze").args(["security", "--offline=true", unit.to_str().unwrap()]));
    let level: f64 = out
        .lines()
        .find_map(|l| l.split("Overall exposure level for icmpxdp.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {out}{err}"));
    assert!(
        level <= 3.5,
        "systemd-analyze security rates the unit {level} (> 3.5, not OK):\n{out}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn systemd_unit_asks_for_readiness_and_tolerates_a_missing_config_dir() {
    let text = std::fs::read_to_string(deploy("icmpxdp.service")).unwrap();
    for line in [
        "Type=notify",
        "ReadOnlyPaths=-/etc/icmpxdp",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?}");
    }
    assert!(
        !text.contains("CAP_SYS_ADMIN\n")
            && !text
                .lines()
                .any(|l| l.starts_with("Capability") && l.contains("SYS_ADMIN"))
    );
}

fn kubernetes_validate(file: &std::path::Path) -> (bool, String) {
    let (ok, out, err) =
        output(Command::new("python3").args(["-m", "kubernetes_validate", "--strict", file.to_str().unwrap()]));
    (ok, format!("{out}{err}"))
}

#[test]
fn daemonset_validates_offline_and_asks_only_for_what_it_needs() {
    let file = deploy("daemonset.yaml");
    let (ok, said) = kubernetes_validate(&file);
    assert!(ok, "kubernetes-validate --strict: {said}");
    assert!(said.contains("daemonset/icmpxdp") && said.contains("passed"), "{said}");

    // The validator does fail: the same file with a field that does not exist.
    let bad = std::env::temp_dir().join(format!("icmpxdp-bad-{}.yaml", std::process::id()));
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &bad,
        text.replace("hostNetwork: true", "hostNetwork: true\n      hostNetwrok: true"),
    )
    .unwrap();
    let (ok, said) = kubernetes_validate(&bad);
    std::fs::remove_file(&bad).unwrap();
    assert!(!ok, "a misspelt field must fail validation: {said}");

    // What it asks for, read with the YAML parser kubernetes-validate uses.
    let script = r#"
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
ds = next(d for d in docs if d["kind"] == "DaemonSet")
c = ds["spec"]["template"]["spec"]["containers"][0]
cm = next(d for d in docs if d["kind"] == "ConfigMap")
print(json.dumps({"pod": ds["spec"]["template"]["spec"], "c": c, "toml": cm["data"]["icmpxdp.toml"]}))
"#;
    let (ok, out, err) = output(Command::new("python3").args(["-c", script, file.to_str().unwrap()]));
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = &v["c"];
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(
        sc["capabilities"]["add"],
        serde_json::json!(["BPF", "PERFMON", "NET_ADMIN"])
    );
    for m in c["volumeMounts"].as_array().unwrap() {
        assert_ne!(m["mountPropagation"], "Bidirectional", "Bidirectional needs privileged");
    }
    let image = c["image"].as_str().unwrap();
    assert!(
        !image.ends_with(":latest") && image.contains(':'),
        "pinned image: {image}"
    );
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(c["resources"]["requests"]["memory"].is_string() && c["resources"]["limits"]["memory"].is_string());
    assert!(v["pod"]["tolerations"].is_array());
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&"$(ICMPXDP_IFACE)"), "interface from config: {args:?}");
    assert!(
        !args.iter().any(|a| a.starts_with("0.0.0.0")),
        "metrics not on every address: {args:?}"
    );
    // The config it ships is valid.
    let toml = std::env::temp_dir().join(format!("icmpxdp-cm-{}.toml", std::process::id()));
    std::fs::write(&toml, v["toml"].as_str().unwrap()).unwrap();
    let (ok, out, err) = output(Command::new(icmpxdp_bin()).arg("check-config").arg(&toml));
    std::fs::remove_file(&toml).unwrap();
    assert!(ok, "the ConfigMap's icmpxdp.toml: {out}{err}");
}
