//! The Conntrack tab over time (egui_kittest, no window): a recording of
//! `iptviz conntrack --watch --record` opens as charts and a tuple table; a
//! recording cut mid-line shows the bad line; live readings (a file read
//! again at each refresh) build the history, and the NAT source ports name
//! the rule that translated them.

mod common;
use common::app_harness;

use std::sync::Arc;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use iptviz::conntrack::pressure::{PressureLevel, RangeFrom};
use iptviz_gui::conntrack_state::CtAction;
use iptviz_gui::state::{Document, View};
use iptviz_gui::{IptvizApp, Options, settings::Settings};

fn harness() -> Harness<'static, IptvizApp> {
    let app = IptvizApp::new(
        Settings::default(),
        Options {
            sync: true,
            ..Default::default()
        },
    );
    app_harness(app, 1280.0, 800.0)
}

fn tmp(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("iptviz-gui-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name).display().to_string()
}

/// One line of a recording, as `iptviz conntrack --watch --record` writes it.
fn record(time: f64, count: u64, failed: u64, ports: u64) -> String {
    let level = if ports > 80 {
        "over80"
    } else if ports > 50 {
        "over50"
    } else {
        "ok"
    };
    format!(
        "{{\"time\":{time:.1},\"fill\":{{\"count\":{count},\"max\":10000,\"buckets\":2500}},\
         \"format\":\"conntrack-s\",\"fields\":[\"insert_failed\",\"drop\",\"early_drop\"],\
         \"cpus\":[{{\"cpu\":0,\"values\":[{failed},0,0]}}],\
         \"top\":[{{\"tuple\":\"udp 192.168.49.2 -> 8.8.8.8:53\",\"ports\":{ports},\
         \"range_size\":100,\"percent\":{ports}.0,\"level\":\"{level}\"}}]}}\n"
    )
}

fn recording() -> String {
    [
        record(1000.0, 4000, 0, 40),
        record(1002.0, 4200, 10, 70),
        record(1004.0, 4400, 30, 90),
    ]
    .concat()
}

fn open(h: &mut Harness<'static, IptvizApp>, path: &str) {
    h.get_by_label("Conntrack").click();
    h.run();
    assert_eq!(h.state().state.view, View::Conntrack);
    h.get_by_label("Conntrack file").click();
    h.run();
    h.get_by_label("Conntrack file").type_text(path);
    h.run();
    h.get_by_label("Load file").click();
    h.run();
}

#[test]
fn recording_opens_as_charts_over_time_and_tuples() {
    let path = tmp("watch.jsonl");
    std::fs::write(&path, recording()).expect("write");
    let mut h = harness();
    h.run();
    open(&mut h, &path);
    let ct = &h.state().state.conntrack;
    assert_eq!(ct.history.len(), 3);
    assert_eq!(ct.ticks.len(), 2);
    assert_eq!(ct.ticks[1].rate("insert_failed"), Some(10.0));
    assert!(ct.error.is_none(), "{:?}", ct.error);
    h.get_by_label_contains("Over time");
    h.get_by_label("entries: 4,400");
    h.get_by_label("insert_failed per second: 10");
    h.get_by_label("drop per second: 0");
    h.get_by_label("early_drop per second: 0");
    h.get_by_label_contains("+100.0 entries/s");
    h.get_by_label_contains("full in about 56 s");
    // The tuple table of the last reading, with its peak.
    h.get_by_label("Most pressed NAT tuples at the last reading");
    h.get_by_label("udp 192.168.49.2 -> 8.8.8.8:53");
    h.get_by_label("90.0% >80%");
}

#[test]
fn recording_cut_mid_line_shows_the_line_and_keeps_the_rest() {
    let text = recording();
    let path = tmp("cut.jsonl");
    std::fs::write(&path, &text[..text.len() - 30]).expect("write");
    let mut h = harness();
    h.run();
    open(&mut h, &path);
    let ct = &h.state().state.conntrack;
    assert_eq!(ct.history.len(), 2);
    let e = ct.error.clone().expect("an error");
    assert!(e.starts_with(&format!("{path}:3:")), "{e}");
    assert!(e.contains("middle of a record"), "{e}");
    h.get_by_label_contains("middle of a record");
    h.get_by_label("insert_failed per second: 5");
}

const RULES: &str = "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.244.0.0/16 -p udp -j MASQUERADE --to-ports 20000-20009
COMMIT
";

fn table(n: u16) -> String {
    (0..n)
        .map(|k| {
            format!(
                "ipv4 2 udp 17 25 src=10.244.1.{} dst=10.96.0.10 sport={} dport=53 \
                 src=10.96.0.10 dst=192.168.49.2 sport=53 dport={} mark=0 zone=0 use=2\n",
                2 + k % 2,
                40000 + k,
                20000 + k
            )
        })
        .collect()
}

#[test]
fn live_readings_build_history_and_name_the_masquerade_rule() {
    let path = tmp("live.txt");
    std::fs::write(&path, table(6)).expect("write");
    let mut h = harness();
    h.run();
    let doc = Document::from_bytes("rules", RULES.as_bytes()).expect("rules");
    let ctx = egui::Context::default();
    {
        let app = h.state_mut();
        app.state.set_document(Arc::new(doc));
        app.state.view = View::Conntrack;
        let ct = &mut app.state.conntrack;
        ct.live_file = Some(path.clone());
        ct.apply(&ctx, CtAction::Live);
    }
    h.run();
    // The table grows between readings: 9 of the 10 ports.
    std::fs::write(&path, table(9)).expect("write");
    h.state_mut().state.conntrack.apply(&ctx, CtAction::Live);
    h.run();
    let ct = &h.state().state.conntrack;
    assert_eq!(ct.history.len(), 2, "one record per reading");
    assert_eq!(ct.ticks.len(), 1);
    let p = ct.pressure.as_ref().expect("pressure");
    let t = &p.tuples[0];
    assert_eq!(t.label(), "udp 192.168.49.2 -> 10.96.0.10:53");
    assert_eq!(
        (t.ports, t.range, t.range_from),
        (9, (20000, 20009), RangeFrom::Rule)
    );
    assert_eq!(t.level, PressureLevel::Over80);
    // The record of the reading holds the tuple as --record would.
    let last = ct.history.last().expect("record");
    assert_eq!(last.top[0].ports, 9);
    assert_eq!(last.fill.map(|f| f.count), Some(9));
    h.get_by_label("NAT source ports");
    h.get_by_label("9 of 10 ports (90.0%) >80%");
    h.get_by_label_contains("translated by: nat POSTROUTING #1 (line 6)");
    h.get_by_label("entries: 9");
    h.get_by_label_contains("most used by 10.244.1.2 5, 10.244.1.3 4");
}

/// A recording made with the rules given: each tuple names its rule.
fn recording_with_rules() -> String {
    recording().replace(
        "\"level\"",
        "\"rule\":\"MASQUERADE POSTROUTING #1, line 6\",\"level\"",
    )
}

#[test]
fn recording_replays_counters_tuples_and_rules_reading_by_reading() {
    let path = tmp("watch-rules.jsonl");
    std::fs::write(&path, recording_with_rules()).expect("write");
    let mut h = harness();
    h.run();
    // The rules of the node, so that insert_failed is shown beside the nat
    // rules that translate UDP.
    let doc = Document::from_bytes("rules", RULES.as_bytes()).expect("rules");
    h.state_mut().state.set_document(Arc::new(doc));
    h.run();
    open(&mut h, &path);
    let ct = &h.state().state.conntrack;
    assert!(ct.error.is_none(), "{:?}", ct.error);
    assert_eq!(ct.cursor, Some(2), "the last reading is shown first");
    let failed = ct
        .health
        .iter()
        .find(|x| x.counter == "insert_failed")
        .expect("insert_failed from the recording");
    assert_eq!((failed.total, failed.per_second), (30, Some(10.0)));
    assert_eq!(ct.fill.map(|f| f.count), Some(4400));
    let race = ct.race.as_ref().expect("insert_failed tied to the rules");
    assert_eq!(race.rules[0].rule.target, "MASQUERADE");
    assert!(race.flows[0].starts_with("udp 192.168.49.2 -> 8.8.8.8:53"));
    // Charts, the tuple table with its rule, the counters and the rules.
    h.get_by_label("insert_failed per second: 10");
    h.get_by_label("Most pressed NAT tuples at the last reading");
    h.get_by_label("translated by");
    h.get_by_label("MASQUERADE POSTROUTING #1, line 6");
    h.get_by_label("90.0% >80%");
    h.get_by_label("Counters (health)");
    h.get_by_label("insert_failed and the NAT rules");
    h.get_by_label("insert_failed 30, 10.0/s now");
    h.get_by_label_contains("without --random-fully");
    // One reading back: its tuples and its rate.
    h.get_by_label("<").click();
    h.run();
    let ct = &h.state().state.conntrack;
    assert_eq!(ct.cursor, Some(1));
    let failed = ct
        .health
        .iter()
        .find(|x| x.counter == "insert_failed")
        .expect("insert_failed");
    assert_eq!((failed.total, failed.per_second), (10, Some(5.0)));
    h.get_by_label("Most pressed NAT tuples at reading 2");
    h.get_by_label("70.0% >50%");
    h.get_by_label("insert_failed 10, 5.0/s now");
    // The first reading has no reading before it: totals, no rate.
    h.get_by_label("<").click();
    h.run();
    let ct = &h.state().state.conntrack;
    assert_eq!(ct.cursor, Some(0));
    assert!(ct.health.iter().all(|x| x.per_second.is_none()));
    h.get_by_label("40.0% ");
}
