//! `icmpxdp capture` against a running instance in the lab, read back by
//! independent readers: tcpdump parses the pcapng and decodes the packets,
//! scapy's pcapng reader gives each packet's comment (the verdict) and
//! direction flags. Real clients: ping, and a UDP socket to a closed port
//! (its burst refused by the limiter after Linux's burst of 6).

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use icmp_user::{
    dataplane::{capture::switch_on, pins::Meta},
    lab::{self, Lab},
};
use icmpxdp_tests::{icmpxdp_bin, in_netns, output, ping, run_responder, unique_lab};

/// A directory of this test's own, removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(what: &str) -> Self {
        let p = std::env::temp_dir().join(format!("icmpxdp-capture-{}-{what}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start_capture(l: &Lab, args: &[&str]) -> Child {
    let child = Command::new(icmpxdp_bin())
        .args(["--netns", &l.responder_ns, "capture", "--iface", &l.responder_if])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn icmpxdp capture");
    // Capturing once the program's switch is on.
    let id = Meta::read(&l.instance()).expect("instance metadata").program_id;
    let end = Instant::now() + Duration::from_secs(10);
    while !switch_on(id).unwrap() {
        assert!(Instant::now() < end, "the capture never switched on");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// SIGINT, then the exit status and stderr (bounded: 10 s).
fn interrupt(mut child: Child) -> (bool, String) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    wait(&mut child)
}

fn wait(child: &mut Child) -> (bool, String) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (status.success(), err);
        }
        assert!(Instant::now() < end, "icmpxdp capture did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `n` UDP datagrams from the client to closed port 9 of the responder.
fn udp_to_closed_port(l: &Lab, n: usize) {
    in_netns(&l.client_ns, move || {
        let s = std::net::UdpSocket::bind((lab::CLIENT_V4, 0)).unwrap();
        for _ in 0..n {
            let _ = s.send_to(b"capture me", (lab::RESPONDER_V4, 9));
        }
    });
}

/// (comment, direction flags) of each packet, read by scapy.
fn comments(path: &Path) -> Vec<(String, u32)> {
    let script = "import sys\nfrom scapy.utils import PcapNgReader\n\
        for p in PcapNgReader(sys.argv[1]):\n\
        \x20   c = p.comment.decode() if isinstance(p.comment, bytes) else str(p.comment)\n\
        \x20   print(f'{c}|{int(p.direction or 0)}')\n";
    let (ok, out, err) = output(Command::new("python3").args(["-c", script]).arg(path));
    assert!(ok, "scapy could not read the pcapng: {err}");
    out.lines()
        .map(|l| {
            let (c, d) = l.rsplit_once('|').unwrap();
            (c.to_owned(), d.parse().unwrap())
        })
        .collect()
}

fn tcpdump(path: &Path) -> String {
    let (ok, out, err) = output(Command::new("tcpdump").args(["-nn", "-r"]).arg(path));
    assert!(ok, "tcpdump could not read the pcapng: {err}");
    out
}

#[test]
fn a_capture_holds_requests_replies_errors_and_refusals_with_their_verdicts() {
    let l = unique_lab();
    let _run = run_responder(&l, &[]);
    let dir = Scratch::new("all");
    let file = dir.path().join("all.pcapng");
    let cap = start_capture(&l, &["-w", file.to_str().unwrap()]);
    let (sent, received) = ping(&l, false, 3);
    assert_eq!((sent, received), (3, 3));
    udp_to_closed_port(&l, 20);
    std::thread::sleep(Duration::from_millis(300));
    let (ok, summary) = interrupt(cap);
    assert!(ok, "capture exits 0 on SIGINT: {summary}");
    assert!(summary.contains("0 lost"), "{summary}");
    let id = Meta::read(&l.instance()).unwrap().program_id;
    assert!(!switch_on(id).unwrap(), "Ctrl-C switches the capture off");

    let decoded = tcpdump(&file);
    let count = |what: &str| decoded.lines().filter(|l| l.contains(what)).count();
    assert_eq!(count("ICMP echo request"), 3, "{decoded}");
    assert_eq!(count("ICMP echo reply"), 3, "{decoded}");
    assert_eq!(
        count("udp port 9 unreachable"),
        6,
        "Linux's burst of 6 errors: {decoded}"
    );

    let c = comments(&file);
    let with = |text: &str, dir: u32| c.iter().filter(|(t, d)| t.contains(text) && *d == dir).count();
    // scapy's direction: 1 inbound, 2 outbound (epb_flags bits 0-1).
    assert_eq!(with("echo_answered tx (received", 1), 3, "{c:?}");
    assert_eq!(with("echo_answered tx (sent", 2), 3, "{c:?}");
    assert_eq!(with("unreachable_sent tx (received", 1), 6, "{c:?}");
    assert_eq!(with("unreachable_sent tx (sent", 2), 6, "{c:?}");
    assert_eq!(with("rate_limited_per_source drop (received", 1), 14, "{c:?}");
}

#[test]
fn filters_count_and_a_killed_capture() {
    let l = unique_lab();
    let run = run_responder(&l, &[]);
    let dir = Scratch::new("filters");
    // Only errors, and stop after 2 by itself.
    let file = dir.path().join("errors.pcapng");
    let mut cap = start_capture(
        &l,
        &["--verdict", "unreachable_sent", "-c", "2", "-w", file.to_str().unwrap()],
    );
    assert_eq!(ping(&l, false, 2).1, 2);
    udp_to_closed_port(&l, 4);
    let (ok, summary) = wait(&mut cap);
    assert!(ok, "-c 2 stops by itself: {summary}");
    assert!(summary.contains("2 decisions captured (4 packets)"), "{summary}");
    let c = comments(&file);
    assert_eq!(c.len(), 4);
    assert!(c.iter().all(|(t, _)| t.contains("unreachable_sent")), "{c:?}");

    // kill -9: the lease runs out and the program switches the capture off.
    let id = Meta::read(&l.instance()).unwrap().program_id;
    let mut cap = start_capture(&l, &["-w", dir.path().join("killed.pcapng").to_str().unwrap()]);
    cap.kill().unwrap();
    cap.wait().unwrap();
    assert!(switch_on(id).unwrap(), "still on right after the kill");
    std::thread::sleep(icmp_user::dataplane::capture::LEASE + Duration::from_millis(300));
    assert_eq!(ping(&l, false, 1).1, 1, "still answering");
    assert!(!switch_on(id).unwrap(), "switched off by the program after the lease");
    // And a new capture may start.
    let cap = start_capture(&l, &["-w", dir.path().join("again.pcapng").to_str().unwrap()]);
    assert!(interrupt(cap).0);
    drop(run);
}

#[test]
fn a_traceroute_is_captured_streaming_to_tcpdump() {
    let l = unique_lab();
    let _run = run_responder(&l, &[]);
    // `-w -` into tcpdump reading a pipe, as an operator would.
    let cap = start_capture(&l, &["--verdict", "unreachable_sent", "-c", "1", "-w", "-"]);
    let (ok, out, err) = output(
        l.client_command("traceroute")
            .args(["-n", "-q", "1", "-m", "1", "-w", "1"])
            .arg(lab::RESPONDER_V4.to_string()),
    );
    assert!(ok, "traceroute: {err}");
    assert!(
        out.contains(&lab::RESPONDER_V4.to_string()),
        "the hop is the responder: {out}"
    );
    let mut cap = cap;
    let mut pcap = Vec::new();
    std::io::Read::read_to_end(cap.stdout.as_mut().unwrap(), &mut pcap).unwrap();
    let (ok, summary) = wait(&mut cap);
    assert!(ok, "{summary}");
    let mut tcpdump = Command::new("tcpdump")
        .args(["-nn", "-r", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(tcpdump.stdin.as_mut().unwrap(), &pcap).unwrap();
    drop(tcpdump.stdin.take());
    let decoded = String::from_utf8(tcpdump.wait_with_output().unwrap().stdout).unwrap();
    let lines: Vec<_> = decoded.lines().collect();
    assert_eq!(lines.len(), 2, "the probe and the error: {decoded}");
    assert!(lines[0].contains("UDP"), "{decoded}");
    assert!(
        lines[1].contains("udp port") && lines[1].contains("unreachable"),
        "{decoded}"
    );
}
