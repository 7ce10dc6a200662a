//! A capture replayed in the app, driven like a person would
//! (egui_kittest): drop a pcap file on the window with rules loaded, read
//! the summary, click a deciding rule to see its chain, see the graph's
//! edges take the capture's counters, click a dropped flow to trace it.

mod common;
use common::app_harness;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use etherparse::PacketBuilder;
use iptviz_gui::{IptvizApp, Options, settings::Settings};
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

const RULES: &str = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:SSH - [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j SSH
-A INPUT -p tcp -m tcp --dport 23 -j DROP
-A SSH -s 198.51.100.0/24 -j ACCEPT
COMMIT
";

const HOST: [u8; 4] = [192, 0, 2, 2];
const CLIENT: [u8; 4] = [198, 51, 100, 7];

/// An SSH handshake (SYN, SYN-ACK, ACK) and three SYNs to telnet.
fn capture(path: &Path) {
    let segs: [(bool, u16, u16, bool, bool); 6] = [
        (true, 40000, 22, true, false),
        (false, 22, 40000, true, true),
        (true, 40000, 22, false, true),
        (true, 40001, 23, true, false),
        (true, 40001, 23, true, false),
        (true, 40001, 23, true, false),
    ];
    let header = PcapHeader {
        datalink: DataLink::RAW,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(std::fs::File::create(path).unwrap(), header).unwrap();
    for (i, &(from_client, sport, dport, syn, ack)) in segs.iter().enumerate() {
        let (s, d) = if from_client {
            (CLIENT, HOST)
        } else {
            (HOST, CLIENT)
        };
        let b = PacketBuilder::ipv4(s, d, 64).tcp(sport, dport, 1, 64240);
        let b = if syn { b.syn() } else { b };
        let b = if ack { b.ack(1) } else { b };
        let mut data = Vec::new();
        b.write(&mut data, &[]).unwrap();
        let t = std::time::Duration::from_millis(i as u64);
        w.write_packet(&PcapPacket::new(t, data.len() as u32, &data))
            .unwrap();
    }
}

struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(name: &str) -> Files {
        let dir =
            std::env::temp_dir().join(format!("iptviz-gui-capture-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("rules.txt"), RULES).unwrap();
        capture(&dir.join("ssh-telnet.pcap"));
        Files { dir }
    }
    fn rules(&self) -> String {
        self.dir.join("rules.txt").display().to_string()
    }
    fn pcap(&self) -> PathBuf {
        self.dir.join("ssh-telnet.pcap")
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// A dropped file known only by its bytes (a browser or a sandboxed drop).
#[derive(Debug)]
struct DroppedBytes(Vec<u8>);

impl egui::DroppedFile for DroppedBytes {
    fn path(&self) -> &Path {
        Path::new("")
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        Ok(self.0.clone())
    }
}

fn harness(rules: String) -> Harness<'static, IptvizApp> {
    let app = IptvizApp::new(
        Settings::default(),
        Options {
            file: Some(rules),
            sync: true,
            ..Default::default()
        },
    );
    let mut h = app_harness(app, 1400.0, 900.0);
    h.run();
    h
}

#[test]
fn a_dropped_capture_is_replayed_summarised_and_drawn_as_heat() {
    let f = Files::new("drop");
    let mut h = harness(f.rules());
    let doc = h.state().state.doc.clone().expect("rules loaded");
    h.input_mut()
        .dropped_files
        .push(Arc::new(Dropped(f.pcap())));
    h.run();
    h.run();
    // The rules stay loaded: the capture goes through them.
    assert!(Arc::ptr_eq(h.state().state.doc.as_ref().unwrap(), &doc));
    let report = h
        .state()
        .state
        .capture
        .current(Some(&doc))
        .expect("capture replayed");
    assert_eq!(report.summary.packets, 6);
    assert_eq!(report.summary.flows, 2);
    h.get_by_label_contains("6 packets in 2 flows (1 replies recognised)");
    // Per deciding rule: the telnet DROP took three packets of one flow,
    // SSH's ACCEPT the SYN, the ESTABLISHED rule the ACK.
    h.get_by_label_contains("filter INPUT#3  DROP  3 pkts, 1 flows");
    h.get_by_label_contains("filter SSH#1  ACCEPT  1 pkts, 1 flows");
    // The flow dropped most, with its rule on hover.
    h.get_by_label_contains("tcp 198.51.100.7:40001 -> 192.0.2.2:23  3/3 dropped");
    // Heat: the graph now carries the capture's counters, so the edge to
    // SSH is as wide as the one packet that took it.
    let heat = h
        .state()
        .state
        .heat
        .clone()
        .expect("capture counters drawn");
    let input = heat.tables[0].chain("INPUT").unwrap();
    let c = |i: usize| input.rules[i].counters.unwrap().packets;
    assert_eq!(
        (c(0), c(1), c(2)),
        (1, 1, 3),
        "per-rule packets of the capture"
    );
    let scene = h.state().state.scene.clone().unwrap();
    assert!(
        scene.edges.iter().any(|e| e.heat > 0.0),
        "the graph's edges take the capture's counters"
    );
    // Clicking a deciding rule shows its chain.
    h.get_by_label_contains("filter SSH#1  ACCEPT").click();
    h.run();
    let sel = h.state().state.selected.expect("chain selected");
    assert_eq!(
        doc.parsed.ruleset.tables[sel.table].chains[sel.chain].name,
        "SSH"
    );
    // Heat off: the rules' own (zero) counters again.
    h.get_by_label("Capture counters on the graph").click();
    h.run();
    assert!(h.state().state.heat.is_none());
    // A dropped flow clicked is traced in the trace panel.
    h.get_by_label_contains("3/3 dropped").click();
    h.run();
    h.run();
    assert_eq!(h.state().trace_form.dport, "23");
    assert_eq!(h.state().trace_form.src, "198.51.100.7");
    h.get_by_label_contains("Verdict: DROP");
    // Closed: the capture is forgotten.
    h.get_by_label("Close capture").click();
    h.run();
    assert!(h.state().state.capture.report.is_none());
    assert!(h.state().state.heat.is_none());
}

#[test]
fn capture_bytes_dropped_without_a_path_are_replayed_not_parsed_as_rules() {
    let f = Files::new("bytes");
    let mut h = harness(f.rules());
    let bytes = std::fs::read(f.pcap()).unwrap();
    h.input_mut()
        .dropped_files
        .push(Arc::new(DroppedBytes(bytes)));
    h.run();
    h.run();
    assert_eq!(h.state().state.doc.as_ref().unwrap().name, f.rules());
    let doc = h.state().state.doc.clone();
    let r = h
        .state()
        .state
        .capture
        .current(doc.as_ref())
        .expect("replayed");
    assert_eq!(r.summary.packets, 6);
    assert!(
        h.state().message.as_ref().is_none_or(|m| !m.error),
        "{:?}",
        h.state().message
    );
}

#[test]
fn truncated_capture_names_the_packet_and_keeps_what_was_traced() {
    let f = Files::new("truncated");
    let mut bytes = std::fs::read(f.pcap()).unwrap();
    bytes.truncate(bytes.len() - 10);
    let cut = f.dir.join("cut.pcap");
    std::fs::write(&cut, &bytes).unwrap();
    let mut h = harness(f.rules());
    h.input_mut().dropped_files.push(Arc::new(Dropped(cut)));
    h.run();
    h.run();
    let doc = h.state().state.doc.clone();
    let r = h
        .state()
        .state
        .capture
        .current(doc.as_ref())
        .expect("replayed");
    assert_eq!(
        r.summary.packets, 5,
        "the packets before the cut are traced"
    );
    assert_eq!(r.error_count, 1);
    assert!(r.errors[0].starts_with("packet 6: "), "{:?}", r.errors);
    h.get_by_label_contains("1 packets could not be read");
}

#[test]
fn a_file_that_is_not_a_capture_still_loads_as_rules() {
    let f = Files::new("rules");
    let mut h = harness(f.rules());
    let other = f.dir.join("other.rules");
    std::fs::write(&other, RULES.replace("--dport 23", "--dport 24")).unwrap();
    h.input_mut()
        .dropped_files
        .push(Arc::new(Dropped(other.clone())));
    h.run();
    h.run();
    assert_eq!(
        h.state().state.doc.as_ref().unwrap().name,
        other.display().to_string()
    );
    assert!(!h.state().state.capture.open);
}

#[test]
fn a_capture_dropped_on_the_bundled_sample_is_replayed_through_it() {
    let app = IptvizApp::new(
        Settings::default(),
        Options {
            sync: true,
            ..Default::default()
        },
    );
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, app: &mut IptvizApp| app.show(ui), app);
    h.run();
    // The app starts with the bundled sample; replaying through it works.
    let f = Files::new("sample");
    h.input_mut()
        .dropped_files
        .push(Arc::new(Dropped(f.pcap())));
    h.run();
    h.run();
    let doc = h.state().state.doc.clone();
    assert!(doc.is_some());
    let r = h
        .state()
        .state
        .capture
        .current(doc.as_ref())
        .expect("replayed");
    assert_eq!(r.summary.packets, 6);
}

#[test]
fn an_unreadable_local_address_in_the_trace_form_is_reported_not_dropped() {
    let f = Files::new("form");
    let mut h = harness(f.rules());
    h.state_mut().trace_form.local = "192.0.2.2, not-an-address".into();
    h.input_mut()
        .dropped_files
        .push(Arc::new(Dropped(f.pcap())));
    h.run();
    h.run();
    let cap = &h.state().state.capture;
    assert!(cap.report.is_none(), "replayed with a half-read form");
    let e = cap.error.as_deref().unwrap_or_default();
    assert!(e.starts_with("trace form: local addresses"), "{e}");
}

/// Exports the shown table to `path` as the app does (on its worker) and
/// gives the file's text.
fn export(h: &mut Harness<'static, IptvizApp>, path: &Path) -> String {
    let ctx = h.ctx.clone();
    let action = iptviz_gui::views::Action::Export(path.display().to_string());
    h.state_mut().message = None;
    h.state_mut().apply(&ctx, action);
    for _ in 0..200 {
        h.run();
        let wrote = format!("wrote {}", path.display());
        if h.state().message.as_ref().is_some_and(|m| m.text == wrote) {
            return std::fs::read_to_string(path).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("export did not finish: {:?}", h.state().message);
}

#[test]
fn export_with_capture_counters_on_draws_the_capture_counters_as_the_canvas_does() {
    let f = Files::new("export");
    let mut h = harness(f.rules());
    h.input_mut()
        .dropped_files
        .push(Arc::new(Dropped(f.pcap())));
    h.run();
    h.run();
    assert!(h.state().state.heat.is_some());
    let with = export(&mut h, &f.dir.join("heat.dot"));
    // INPUT#3 dropped the three telnet SYNs of the capture.
    assert!(with.contains("3 pkts"), "{with}");
    h.get_by_label("Capture counters on the graph").click();
    h.run();
    let without = export(&mut h, &f.dir.join("plain.dot"));
    assert!(!without.contains("3 pkts"), "{without}");
}
