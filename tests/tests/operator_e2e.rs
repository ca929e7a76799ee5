//! What an operator meets: an interface deleted under `run`, a `run` killed
//! while metrics are scraped, a scrape without permission, reloads that
//! change only what they name, `ip netns exec` attach, `promtool`.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use icmpxdp_tests::{Running, icmpxdp_bin, output, ping, run_responder, unique_lab};
use serde_json::Value;

fn status_of(instance: &str) -> Value {
    let (ok, out, err) = output(Command::new(icmpxdp_bin()).args(["status", "--json"]));
    assert!(ok, "status: {err}");
    let all: Value = serde_json::from_str(&out).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|i| i["instance"] == instance)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Waits (at most `secs`) until `cond` holds.
fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

#[test]
fn an_interface_deleted_under_run_is_waited_for_and_attached_again() {
    let mut l = unique_lab();
    let instance = l.instance();
    let mut run = run_responder(&l, &[]);
    assert_eq!(ping(&l, false, 2), (2, 2));
    assert_eq!(status_of(&instance)["attached"], true);

    l.delete_link().unwrap();
    assert!(
        eventually(5, || status_of(&instance)["attached"] == false),
        "status says not attached once the interface is gone: {}",
        status_of(&instance)
    );
    assert!(run.child.try_wait().unwrap().is_none(), "run keeps waiting");

    l.recreate_link().unwrap();
    assert!(
        eventually(5, || status_of(&instance)["attached"] == true),
        "attached again when the interface is back: {}",
        status_of(&instance)
    );
    assert_eq!(ping(&l, false, 3), (3, 3), "the new interface is answered by XDP");
    assert_eq!(ping(&l, true, 2), (2, 2), "IPv6 too (the address set was re-read)");
    assert!(run.stop().success());
}

#[test]
fn exit_on_interface_loss_exits_non_zero_and_cleans_up() {
    let mut l = unique_lab();
    let instance = l.instance();
    let mut run = run_responder(&l, &["--exit-on-interface-loss"]);
    l.delete_link().unwrap();
    let mut status = None;
    assert!(eventually(5, || {
        status = run.child.try_wait().unwrap();
        status.is_some()
    }));
    let status = status.unwrap();
    assert!(
        !status.success(),
        "a supervisor's Restart=on-failure must fire: {status:?}"
    );
    assert!(
        !Path::new(&format!("/sys/fs/bpf/icmpxdp/{instance}")).exists(),
        "pins removed"
    );
}

/// GET `url` from inside namespace `ns`: (HTTP status, body).
fn http_get(ns: &str, url: &str, accept: &str) -> (u16, String) {
    let script = r#"
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1], headers={"Accept": sys.argv[2]})
try:
    r = urllib.request.urlopen(req, timeout=5)
    print(r.status); sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); sys.stdout.write(e.read().decode())
"#;
    let (ok, out, err) = output(Command::new("ip").args(["netns", "exec", ns, "python3", "-c", script, url, accept]));
    assert!(ok, "GET {url}: {err}");
    let (code, body) = out.split_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_owned())
}

fn sample(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_say_when_the_responder_is_gone_and_promtool_accepts_them() {
    let l = unique_lab();
    let instance = l.instance();
    let mut run = run_responder(&l, &[]);
    let addr = "127.0.0.1:9471";
    let _metrics = Running::start_until(
        &["--netns", &l.responder_ns, "serve-metrics", "--metrics-addr", addr],
        "metrics at",
    );
    let url = format!("http://{addr}/metrics");
    assert_eq!(ping(&l, false, 2), (2, 2));
    let (code, body) = http_get(&l.responder_ns, &url, "text/plain");
    assert_eq!(code, 200);
    let attached = format!("icmpxdp_attached{{iface=\"{instance}\"}}");
    assert_eq!(sample(&body, &attached), Some(1.0), "{body}");
    assert!(body.contains("icmpxdp_build_info{version="), "{body}");
    assert_eq!(
        sample(
            &body,
            &format!("icmpxdp_netstat_Icmp_OutEchoReps{{iface=\"{instance}\"}}")
        ),
        Some(2.0)
    );

    // promtool reads the Prometheus text format and lints it.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    std::io::Write::write_all(promtool.stdin.as_mut().unwrap(), body.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    // The one lint allowed: the node_exporter-compatible netstat names are
    // camelCase on purpose (node_exporter's own node_netstat_Icmp_* fail it
    // the same way), so a dashboard swaps a prefix, not its queries.
    let problems: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .filter(|l| {
            !(l.starts_with("icmpxdp_netstat_Icmp") && l.ends_with("should be written in 'snake_case' not 'camelCase'"))
        })
        .map(str::to_owned)
        .collect();
    assert!(problems.is_empty(), "promtool check metrics: {problems:#?}");

    // kill -9: the link dies with the process; the metrics must say so.
    run.child.kill().unwrap();
    run.child.wait().unwrap();
    let (code, body) = http_get(&l.responder_ns, &url, "application/openmetrics-text");
    assert_eq!(code, 200);
    assert_eq!(sample(&body, &attached), Some(0.0), "{body}");
    assert!(
        !body.contains(&format!("icmpxdp_frames_total{{iface=\"{instance}\"}}")),
        "no frozen counters for a dead instance: {body}"
    );
    assert_eq!(status_of(&instance)["live"], false);
    // The killed run's stale pins and metadata, removed as an operator would.
    let (ok, _, err) =
        output(Command::new(icmpxdp_bin()).args(["--netns", &l.responder_ns, "detach", "--iface", &l.responder_if]));
    assert!(ok, "detach clears a killed run's pins: {err}");
    assert!(!icmp_user::dataplane::pins::instance_dir(&instance).exists());
}

#[test]
fn a_scrape_without_permission_fails_instead_of_answering_empty() {
    let l = unique_lab();
    let _run = run_responder(&l, &[]);
    // As nobody, in the root namespace, on loopback.
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
        .arg(icmpxdp_bin())
        .args(["serve-metrics", "--metrics-addr", "127.0.0.1:9472"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("metrics at"), "{line}");
    let script = r#"
import urllib.request, urllib.error
try:
    print(urllib.request.urlopen("http://127.0.0.1:9472/metrics", timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
"#;
    let (_, out, _) = output(Command::new("python3").args(["-c", script]));
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.starts_with("500"), "Prometheus must see the target fail: {out}");
    assert!(out.contains("permission denied") && out.contains("root"), "{out}");
}

fn config_of(instance: &str) -> String {
    status_of(instance)["config"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn reload_changes_only_what_it_names_on_every_path() {
    let l = unique_lab();
    let instance = l.instance();
    let file = std::env::temp_dir().join(format!("icmpxdp-op-{}.toml", std::process::id()));
    std::fs::write(&file, "[ip]\nttl = 50\n[rate_limit]\nburst = 8\n").unwrap();
    let file_s = file.to_str().unwrap();
    let run = run_responder(&l, &["--config", file_s, "--set", "rate_limit.msgs_per_sec=500"]);
    assert!(config_of(&instance).contains("ttl 50"), "{}", config_of(&instance));

    let reload = |args: &[&str]| {
        let mut a = vec![
            "--netns",
            l.responder_ns.as_str(),
            "reload",
            "--iface",
            l.responder_if.as_str(),
        ];
        a.extend_from_slice(args);
        output(Command::new(icmpxdp_bin()).args(&a))
    };
    let (ok, out, err) = reload(&["--set", "ip.ttl=99"]);
    assert!(ok, "{out}{err}");
    let c = config_of(&instance);
    assert!(c.contains("ttl 99"), "the named key changed: {c}");
    assert!(c.contains("burst 8"), "the file's burst stays: {c}");
    assert!(c.contains("global 500/s"), "the start's --set stays: {c}");

    let (ok, out, _) = reload(&["--set", "rate_limit.max_sources=100"]);
    assert!(ok && out.contains("until a restart"), "{out}");

    let (ok, _, err) = reload(&["--set", "ip.ttl=0"]);
    assert!(!ok && err.contains("ip.ttl: must be between 1 and 255, got 0"), "{err}");
    assert!(
        config_of(&instance).contains("ttl 99"),
        "a refused reload changes nothing"
    );
    let meta = &status_of(&instance)["meta"];
    assert_eq!(meta["reloads_ok"], 2, "{meta}");
    assert_eq!(meta["reloads_failed"], 1, "{meta}");

    // SIGHUP re-reads the file and keeps every --set so far: the CLI
    // reload's ttl 99 is not undone.
    std::fs::write(&file, "[ip]\nttl = 50\n[rate_limit]\nburst = 9\n").unwrap();
    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(run.child.id() as i32, libc::SIGHUP) };
    assert!(
        eventually(5, || config_of(&instance).contains("burst 9")),
        "{}",
        config_of(&instance)
    );
    let c = config_of(&instance);
    assert!(c.contains("ttl 99") && c.contains("global 500/s"), "{c}");
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn ip_netns_exec_attach_is_refused_with_the_fix() {
    let l = unique_lab();
    let (ok, _, err) =
        output(
            l.responder_command(icmpxdp_bin().to_str().unwrap())
                .args(["attach", "--iface", &l.responder_if]),
        );
    assert!(!ok, "refused");
    assert!(err.contains("--netns"), "says what to do instead: {err}");
    let (_, links, _) = output(Command::new("ip").args(["-n", &l.responder_ns, "link", "show", &l.responder_if]));
    assert!(!links.contains("prog/xdp"), "nothing attached: {links}");
    assert!(!Path::new(&format!("/run/icmpxdp/{}.json", l.responder_if)).exists());
}

#[test]
fn systemd_hears_ready_reloading_and_stopping_and_journald_gets_priorities() {
    use std::os::unix::net::UnixDatagram;
    let l = unique_lab();
    let dir = std::env::temp_dir().join(format!("icmpxdp-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock_path = dir.join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let child = Command::new(icmpxdp_bin())
        .args([
            "--netns",
            &l.responder_ns,
            "run",
            "--iface",
            &l.responder_if,
            "--metrics-addr",
            "127.0.0.1:9473",
        ])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("JOURNAL_STREAM", "0:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let recv = || {
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("a notification within 10 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let ready = recv();
    assert!(ready.starts_with("READY=1"), "{ready}");
    // READY=1 came after the attach: the interface answers now.
    assert_eq!(ping(&l, false, 1), (1, 1));
    let (code, body) = http_get(&l.responder_ns, "http://127.0.0.1:9473/healthz", "*/*");
    assert_eq!((code, body.as_str()), (200, "ok\n"));

    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let reloading = recv();
    assert!(reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{reloading}");
    assert!(recv().starts_with("READY=1"));

    // Deleting the interface makes /healthz fail and logs a warning at <4>.
    let mut l = l;
    l.delete_link().unwrap();
    assert!(eventually(5, || http_get(
        &l.responder_ns,
        "http://127.0.0.1:9473/healthz",
        "*/*"
    )
    .0 == 503));
    // The kernel says so at once; run notices on its next once-a-second check.
    std::thread::sleep(Duration::from_millis(1500));

    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(recv(), "STOPPING=1");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|line| line.starts_with("<4>") && line.contains("disappeared")),
        "a warning with syslog priority 4: {stderr}"
    );
    assert!(
        stderr.lines().any(|line| line.starts_with("<6>")),
        "info lines at <6>: {stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn errors_say_what_to_do() {
    let l = unique_lab();
    let ns = l.responder_ns.as_str();
    let iface = l.responder_if.as_str();
    let bin = icmpxdp_bin();

    // Options a command ignores are errors.
    let (ok, _, err) = output(Command::new(&bin).args(["--netns", ns, "status"]));
    assert!(
        !ok && err.contains("--netns") && err.contains("does not apply to status"),
        "{err}"
    );

    // An MTU too large for driver mode says MTU (a veth pair of its own, in
    // the lab's namespace, removed with it).
    let st = Command::new("ip")
        .args([
            "-n", ns, "link", "add", "ixmtu0", "mtu", "9000", "type", "veth", "peer", "name", "ixmtu1", "mtu", "9000",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let (ok, _, err) = output(Command::new(&bin).args(["--netns", ns, "run", "--iface", "ixmtu0", "--mode", "driver"]));
    assert!(
        !ok && err.contains("MTU") && err.contains("9000") && err.contains("--mode skb"),
        "{err}"
    );

    // The hint after an attach names the namespace, and works as given.
    let (ok, out, err) = output(Command::new(&bin).args(["--netns", ns, "attach", "--iface", iface]));
    assert!(ok, "{err}");
    let hint = format!("`icmpxdp --netns {ns} detach --iface {iface}`");
    assert!(out.contains(&hint), "{out}");
    // A second attach explains the conflict and the way out.
    let (ok, _, err) = output(Command::new(&bin).args(["--netns", ns, "attach", "--iface", iface]));
    assert!(
        !ok && err.contains("--replace") && err.contains("icmpxdp detach"),
        "{err}"
    );
    let (ok, _, err) = output(Command::new(&bin).args(["--netns", ns, "detach", "--iface", iface]));
    assert!(ok, "{err}");

    // A bad --set is blamed on the --set, not on a valid file; an untagged
    // value says what it expects.
    let file = std::env::temp_dir().join(format!("icmpxdp-err-{}.toml", std::process::id()));
    std::fs::write(&file, "[ip]\nttl = 5\n").unwrap();
    let (ok, _, err) = output(Command::new(&bin).args(["check-config"]).arg(&file));
    assert!(ok, "{err}");
    let (ok, _, err) = output(
        Command::new(&bin)
            .args(["--netns", ns, "run", "--iface", iface, "--config"])
            .arg(&file)
            .args(["--set", "ip.tll=3"]),
    );
    assert!(
        !ok && err.contains("invalid --set ip.tll=3") && err.contains("unknown field `tll`"),
        "{err}"
    );
    std::fs::write(&file, "[rate_limit]\nratemask = true\n").unwrap();
    let (ok, _, err) = output(Command::new(&bin).arg("check-config").arg(&file));
    assert!(
        !ok && err.contains("a ratemask: a number") && err.contains("rate_limit.ratemask"),
        "{err}"
    );
    std::fs::remove_file(&file).unwrap();

    // Without root, reading counters says what permission is missing.
    let _run = run_responder(&l, &[]);
    let (ok, _, err) = output(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
            .arg(&bin)
            .args(["stats", "--iface", &l.instance()]),
    );
    assert!(!ok && err.contains("needs root"), "{err}");
}

/// An instance attached by another icmpxdp version — here its pinned
/// `CONFIG`, then `COUNTERS`, swapped for maps of another layout, as an
/// older build pinned them — is refused by name with what to do: nothing
/// written into it, nothing read from it as garbage.
#[test]
fn an_instance_of_another_version_is_refused_with_what_to_do() {
    let l = unique_lab();
    let ns = l.responder_ns.as_str();
    let iface = l.responder_if.as_str();
    let bin = icmpxdp_bin();
    let (ok, _, err) = output(Command::new(&bin).args(["--netns", ns, "attach", "--iface", iface]));
    assert!(ok, "{err}");
    let dir = Path::new("/sys/fs/bpf/icmpxdp").join(l.instance());
    let foreign = |name: &str, value_size: usize| {
        let pin = dir.join(name);
        std::fs::remove_file(&pin).unwrap();
        let (ok, _, err) = output(Command::new("bpftool").args([
            "map",
            "create",
            pin.to_str().unwrap(),
            "type",
            "array",
            "key",
            "4",
            "value",
            &value_size.to_string(),
            "entries",
            "2",
            "name",
            name,
        ]));
        assert!(ok, "bpftool map create: {err}");
    };
    let says_what_to_do = |err: &str, name: &str| {
        err.contains(&l.instance())
            && err.contains(&format!("pinned {name} map"))
            && err.contains("another icmpxdp version")
            && err.contains("icmpxdp detach")
    };
    foreign("CONFIG", 208);
    let (ok, _, err) =
        output(Command::new(&bin).args(["--netns", ns, "reload", "--iface", iface, "--set", "ip.ttl=9"]));
    assert!(!ok && says_what_to_do(&err, "CONFIG"), "{err}");
    foreign("COUNTERS", 20832);
    let (ok, _, err) = output(Command::new(&bin).args(["stats", "--iface", &l.instance()]));
    assert!(!ok && says_what_to_do(&err, "COUNTERS"), "{err}");
    // And the way out works.
    let (ok, _, err) = output(Command::new(&bin).args(["--netns", ns, "detach", "--iface", iface]));
    assert!(ok, "{err}");
    assert!(!dir.exists());
}

#[test]
fn a_veth_whose_peer_runs_no_xdp_gets_skb_mode_in_auto() {
    let l = unique_lab();
    let ns = l.responder_ns.as_str();
    // The lab's veth: its peer runs xdp_pass (in another namespace), so
    // auto keeps driver mode.
    let mut run = run_responder(&l, &[]);
    assert!(
        run.stdout_lines.last().unwrap().contains("driver mode"),
        "{:?}",
        run.stdout_lines
    );
    assert!(run.stop().success());

    // A veth pair of its own, neither end running XDP.
    let st = Command::new("ip")
        .args(["-n", ns, "link", "add", "ixv0", "type", "veth", "peer", "name", "ixv1"])
        .status()
        .unwrap();
    assert!(st.success());
    for dev in ["ixv0", "ixv1"] {
        Command::new("ip")
            .args(["-n", ns, "link", "set", dev, "up"])
            .status()
            .unwrap();
    }
    let (ok, out, err) = output(Command::new(icmpxdp_bin()).args(["--netns", ns, "attach", "--iface", "ixv0"]));
    assert!(ok, "{err}");
    assert!(out.contains("in skb mode"), "auto picks skb: {out}");
    assert!(err.contains("veth peer runs no XDP program"), "and says why: {err}");
    let (ok, _, err) = output(Command::new(icmpxdp_bin()).args(["--netns", ns, "detach", "--iface", "ixv0"]));
    assert!(ok, "{err}");
    let (ok, out, err) =
        output(Command::new(icmpxdp_bin()).args(["--netns", ns, "attach", "--iface", "ixv0", "--mode", "driver"]));
    assert!(ok && out.contains("in driver mode"), "{out}{err}");
    assert!(
        err.contains("driver mode as asked") && err.contains("--mode skb"),
        "warns: {err}"
    );
    let (ok, _, err) = output(Command::new(icmpxdp_bin()).args(["--netns", ns, "detach", "--iface", "ixv0"]));
    assert!(ok, "{err}");
}

#[test]
fn bpftool_dumps_maps_with_field_names() {
    let l = unique_lab();
    let _run = run_responder(&l, &["--set", "ip.ttl=77"]);
    let dir = format!("/sys/fs/bpf/icmpxdp/{}", l.instance());
    let (ok, out, err) =
        output(Command::new("bpftool").args(["-j", "map", "dump", "pinned", &format!("{dir}/CONFIG")]));
    assert!(ok, "bpftool: {err}");
    let entries: Value = serde_json::from_str(&out).unwrap();
    let ttls: Vec<&Value> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["formatted"]["value"]["ttl"])
        .collect();
    assert!(
        ttls.contains(&&Value::from(77)),
        "the config slot in use, by field name: {out}"
    );
    let (ok, out, _) = output(Command::new("bpftool").args(["map", "dump", "pinned", &format!("{dir}/COUNTERS")]));
    assert!(
        ok && out.contains("\"key\": 0") && out.contains("\"verdicts\""),
        "counters, one entry per CPU, by field: {out}"
    );
}
